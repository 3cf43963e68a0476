"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_impl.receiver.server import RunningReceiver, running_receiver
from tests.browser import NO_CHROMIUM, chromium_path, launched_chromium
from tests.postgres import Cluster, start_cluster


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[RunningReceiver]:
    """The reference receiver on a free loopback port, backed by a fresh SQLite file."""
    with running_receiver(tmp_path / "receiver.sqlite3") as running:
        yield running


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster for the session (skipped, with the reason, without one)."""
    try:
        cluster = start_cluster()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> str:
    """A fresh, empty database on the session's cluster."""
    return postgres_cluster.create_database()


@pytest.fixture
def chromium() -> Iterator[object]:
    """A headless Chromium (a Playwright `Browser`) for one browser test.

    Per test, not per session: while Playwright's sync API is open it keeps an event loop
    running on the main thread, so every later test in the process that calls `asyncio.run`
    failed ("cannot be called from a running event loop"). Skipped, with the reason, where
    Debian's chromium is not installed.
    """
    if chromium_path() is None:
        pytest.skip(NO_CHROMIUM)
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def page(chromium: object) -> Iterator[object]:
    """A fresh browser page (a Playwright `Page`) in its own context, closed after the test."""
    context = chromium.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()
