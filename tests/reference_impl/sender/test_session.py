"""The SMTP session against servers that misbehave before their greeting, over real sockets.

PROTOCOL.md section 6: a greeting slower than the provider's timeout is `SMTP timeout` (a new
attempt would only wait again, so it is not retried); a connection closed before the greeting is
`SMTP connection error`, retried like any set-up failure a new connection may fix.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from reference_impl.sender import errors as e
from reference_impl.sender.provider import Provider
from reference_impl.sender.session import SendFailed, open_session

RETRIES = 2


class PreGreetingServer:
    """Accepts connections and, before any greeting, either stalls or closes; counts accepts."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = int(self._listener.getsockname()[1])

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            if self.behaviour == "close":
                conn.close()
            else:
                self._held.append(conn)  # says nothing until the test ends

    @contextmanager
    def running(self) -> Iterator[PreGreetingServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            for conn in self._held:
                conn.close()
            self._listener.close()


def _open(port: int, timeout: float) -> e.Failure:
    provider = Provider("p", "127.0.0.1", port, "a@platform.example", timeout=timeout)
    with pytest.raises(SendFailed) as raised:
        open_session(
            provider, ssl.create_default_context(), None, retries=RETRIES, sleep=lambda _: None
        )
    return raised.value.failure


def test_a_greeting_slower_than_the_timeout_is_smtp_timeout_and_not_retried() -> None:
    with PreGreetingServer("stall").running() as server:
        failure = _open(server.port, timeout=0.3)
    assert e.classify(failure) == e.TIMEOUT
    assert failure.stage == e.GREETING
    assert "no greeting within 0.3 s" in failure.detail
    assert server.accepted == 1


def test_a_connection_closed_before_the_greeting_is_a_connection_error_and_retried() -> None:
    with PreGreetingServer("close").running() as server:
        failure = _open(server.port, timeout=5.0)
    assert e.classify(failure) == e.CONNECTION_ERROR
    assert failure.stage == e.GREETING
    assert "closed the connection before its greeting" in failure.detail
    assert server.accepted == RETRIES + 1
