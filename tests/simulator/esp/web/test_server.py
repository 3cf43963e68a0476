"""The fake ESP's web server stops cleanly even when waitress's loop lost its trigger."""

from __future__ import annotations

import socket

import httpx
from flask import Flask

from simulator.esp.web.server import WebServer


def _app() -> Flask:
    app = Flask(__name__)
    app.add_url_rule("/ping", "ping", lambda: "pong")
    return app


def test_stop_survives_a_trigger_the_loop_already_closed() -> None:
    """Waitress's loop can close its own trigger on a racing EBADF (Pylons/waitress#468); a
    `with FakeESP(...)` block then failed in `stop()` with `OSError: [Errno 9]`. Stopping must
    still close the listening socket and return."""
    web = WebServer(_app()).start()
    assert httpx.get(web.url + "/ping").text == "pong"
    web._server.trigger.close()  # type: ignore[union-attr]  # what the racing loop leaves behind
    web.stop(timeout=5)
    with socket.socket() as probe:
        assert probe.connect_ex((web.host, web.port)) != 0, "the port must be closed after stop"


def test_stop_before_start_closes_the_bound_socket() -> None:
    web = WebServer(_app())
    web.stop(timeout=1)
    with socket.socket() as probe:
        assert probe.connect_ex((web.host, web.port)) != 0
