"""Fixtures for testing the conformance suite itself: receivers in process and on sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from reference_impl.receiver.app import ReceiverConfig, create_app
from reference_impl.receiver.server import BackgroundServer
from simulator.conformance.client import CallbackClient
from simulator.conformance.context import Context
from simulator.conformance.transport import wsgi_target
from tests.simulator.conformance.receivers import CHOICES, toy_receiver

CHECK_SETTINGS = settings(max_examples=25, derandomize=True, deadline=None, database=None)
CATCH_SETTINGS = settings(CHECK_SETTINGS, phases=[Phase.explicit, Phase.generate])
"""For receivers expected to fail: finding the bug is the point, shrinking it only costs time."""


@pytest.fixture
def toy_context() -> Iterator[Callable[..., Context]]:
    """Build a check context for a toy receiver with the given bugs (or choices), in process."""
    clients: list[CallbackClient] = []

    def make(*bugs: str) -> Context:
        client = CallbackClient(wsgi_target(toy_receiver(*bugs)))
        clients.append(client)
        return Context(client, CATCH_SETTINGS if set(bugs) - CHOICES else CHECK_SETTINGS)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def reference_context(tmp_path: Path) -> Iterator[Context]:
    """The reference receiver's Flask app, in process through `httpx.WSGITransport`."""
    app = create_app(ReceiverConfig(db_path=tmp_path / "receiver.sqlite3"))
    with CallbackClient(wsgi_target(app)) as client:
        yield Context(client, CHECK_SETTINGS)
    app.extensions["bounceback_store"].close()


@pytest.fixture
def serve_toy() -> Iterator[Callable[..., str]]:
    """Serve a toy receiver on a free loopback port with waitress; returns its base URL."""
    servers: list[BackgroundServer] = []

    def serve(*bugs: str) -> str:
        server = BackgroundServer(toy_receiver(*bugs)).start()
        servers.append(server)
        return server.url

    yield serve
    for server in servers:
        server.stop()
