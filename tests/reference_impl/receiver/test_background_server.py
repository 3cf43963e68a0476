"""The receiver's background server stops cleanly whatever state waitress's loop is in."""

from __future__ import annotations

import socket

import httpx
from flask import Flask

from reference_impl.receiver.server import BackgroundServer


def _app() -> Flask:
    app = Flask(__name__)
    app.add_url_rule("/ping", "ping", lambda: "pong")
    return app


def _closed(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) != 0


def test_stop_survives_a_trigger_the_loop_already_closed() -> None:
    """Waitress's loop can close its own trigger on a racing EBADF (Pylons/waitress#468)."""
    server = BackgroundServer(_app()).start()
    assert httpx.get(server.url + "/ping").text == "pong"
    server._server.trigger.close()  # what the racing loop leaves behind
    server.stop(timeout=5)
    assert _closed(server.host, server.port), "the port must be closed after stop"


def test_stop_before_start_closes_the_bound_socket() -> None:
    """A caller that fails between building and starting still releases the port."""
    server = BackgroundServer(_app())
    server.stop(timeout=1)
    assert _closed(server.host, server.port)
