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


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One headless Chromium (a Playwright `Browser`) for a module's browser tests.

    Per module, not per session: while Playwright's sync API runs, the main thread has a running
    asyncio loop, so any later test calling `asyncio.run` (the SMTP tests do) would fail with
    "cannot be called from a running event loop". Skipped, with the reason, where Debian's
    chromium is not installed.
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
