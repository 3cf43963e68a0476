"""Serving a WSGI app with waitress, on the main thread (the CLI) or a background one (tests).

waitress is a production server with no C extensions, so the same server runs under the CLI, the
demo and the tests, and inside each gunicorn worker of `--workers N` (workers.py). Stopping it
from another thread must happen on its own loop: the trigger runs `close_all` there, the map
empties and `run()` returns.

Three hooks make waitress keep the receiver's promises; each is a documented extension point of
waitress (`channel_class`, `parser_class`, `error_task_class`, `maintenance`), checked against
waitress 3.0.1 and 3.0.2, and the pin in pyproject.toml (`<3.1`) makes a new version a deliberate
step, re-checked with tests/reference_impl/receiver/test_server_hardening.py:

- a request deadline: waitress closes only channels idle for `channel_timeout`, so a client that
  trickles one byte every few seconds holds its connection forever (slowloris). `maintenance`
  also closes a channel whose request started arriving more than `request_timeout` seconds ago,
  headers and body together; with the connection limit raised (poll, not select), many slow
  clients cannot lock out a fresh one;
- framing: a request with both Content-Length and Transfer-Encoding (or Transfer-Encoding in
  HTTP/1.0) is refused with 400 and the connection closed, as RFC 9112 section 6.1 asks, so no
  second request can be smuggled behind its body;
- one shape: waitress's own refusals (400, 413, 431, 501, and 500 when the app fails before
  answering) are the protocol's JSON error body, not waitress's text/plain.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

from reference_impl.errors import PlatformError
from reference_impl.protocol import replies as r
from reference_impl.protocol.links import LinkKey
from reference_impl.receiver.app import DEFAULT_MAX_BODY_BYTES, ReceiverConfig, create_app
from reference_impl.receiver.dashboard.stream import DEFAULT_STREAM_SECONDS, slots_for
from reference_impl.receiver.store import Store

WSGIApp = Callable[..., Any]
log = logging.getLogger("bounceback.server")

# A request (headers and body) must arrive whole within this many seconds of its first byte.
DEFAULT_REQUEST_TIMEOUT = 30.0
# A connection with no request under way is closed after this many idle seconds.
IDLE_TIMEOUT = 30
# Open connections at once; poll() has no FD_SETSIZE ceiling, so this can exceed 1024.
CONNECTION_LIMIT = 1000
_ERROR_MESSAGES = {
    400: r.MALFORMED_REQUEST,
    413: r.BODY_TOO_LARGE,
    431: r.HEADERS_TOO_LARGE,
    500: r.SERVER_ERROR,
    501: r.NOT_IMPLEMENTED,
}


class ServerError(PlatformError):
    """The server could not start, for instance because the port is taken."""


class _Parser(HTTPRequestParser):
    """waitress's parser, stamped with its first byte's time and strict about framing."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        # The channel makes a parser when the first byte of a request arrives.
        self.started = time.monotonic()

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        # waitress 3.0 pops TRANSFER_ENCODING for HTTP/1.1 and sets `chunked`; for HTTP/1.0
        # it leaves the header in place and frames by Content-Length.
        ambiguous = self.chunked and "CONTENT_LENGTH" in self.headers
        if ambiguous or "TRANSFER_ENCODING" in self.headers:
            raise ParsingError(r.AMBIGUOUS_LENGTH)


class _JSONErrorTask(ErrorTask):
    """waitress's error answer in the protocol's JSON shape; it still closes the connection."""

    def execute(self) -> None:
        error = self.request.error
        message = error.body if error.body == r.AMBIGUOUS_LENGTH else None
        answer = r.error_reply(error.code, message or _ERROR_MESSAGES.get(error.code, error.reason))
        body = json.dumps(answer.body).encode()
        log.info("request refused by the server: %s %s", error.code, error.body)
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):
    parser_class = _Parser
    error_task_class = _JSONErrorTask


class _Server(TcpWSGIServer):
    """One listening socket whose channels have a request deadline."""

    channel_class = _Channel
    request_timeout = DEFAULT_REQUEST_TIMEOUT

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        cutoff = time.monotonic() - self.request_timeout
        for channel in self.active_channels.values():
            request = channel.request  # the request still arriving, if any
            if not channel.requests and request is not None and request.started < cutoff:
                log.info("closing a connection whose request took over %ss", self.request_timeout)
                channel.will_close = True


def hardened_server(
    app: WSGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    threads: int = 4,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    sock: socket.socket | None = None,
) -> TcpWSGIServer:
    """A waitress server with the three hooks above, listening on `host:port`, or on `sock`.

    `sock` is a socket already bound and listening (a gunicorn worker's inherited listener), so
    every process serving the receiver keeps the same promises (`workers.WaitressWorker`).
    """
    adjustments = Adjustments(
        host=host,
        port=port,
        threads=threads,
        max_request_body_size=2 * max_body_bytes + 1024 * 1024,
        ident="bounceback",
        clear_untrusted_proxy_headers=True,
        channel_timeout=IDLE_TIMEOUT,
        cleanup_interval=1,
        connection_limit=CONNECTION_LIMIT,
        asyncore_use_poll=True,
    )
    try:
        if sock is None:
            server = _Server(app, map={}, adj=adjustments)
        else:
            info = (sock.family, sock.type, sock.proto, sock.getsockname())
            server = _Server(
                app, map={}, _sock=sock, adj=adjustments, sockinfo=info, bind_socket=False
            )
    except OSError as exc:
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    server.request_timeout = request_timeout
    return server


class BackgroundServer:
    """A waitress server on a daemon thread; `url` is known as soon as it is constructed."""

    def __init__(
        self,
        app: WSGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        threads: int = 4,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self._server = hardened_server(
            app,
            host=host,
            port=port,
            threads=threads,
            max_body_bytes=max_body_bytes,
            request_timeout=request_timeout,
        )
        self.host = host
        self.port = int(self._server.effective_port)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        self._thread = threading.Thread(target=self._server.run, name="waitress", daemon=True)

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def run(self) -> None:
        """Serve on the calling thread until interrupted."""
        self._server.run()

    def stop(self, timeout: float = 10) -> None:
        """Close every socket on the server's own loop, then wait for its threads.

        If the loop is already gone (its trigger closed, or its thread ended: waitress's loop can
        die on a racing EBADF, Pylons/waitress#468), what is left is closed from here instead.
        """
        server = self._server
        try:
            if not self._thread.is_alive():
                raise OSError("the server loop is not running")
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        except OSError as exc:
            log.warning("waitress loop already down (%s); closing its sockets directly", exc)
            wasyncore.close_all(server._map)
        server.task_dispatcher.shutdown(timeout=timeout)
        if self._thread.ident is not None:  # started, so there is a thread to wait for
            self._thread.join(timeout)


@dataclass
class RunningReceiver:
    url: str
    callback_url: str
    store: Store
    app: Flask
    server: BackgroundServer


@contextmanager
def running_receiver(
    db_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    threads: int = 4,
    link_keys: tuple[LinkKey, ...] = (),
    read_token: str | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    public_read: bool = False,
    stream_seconds: float = DEFAULT_STREAM_SECONDS,
) -> Iterator[RunningReceiver]:
    """Start the reference receiver on a real socket for the duration of the block.

    `db_path` is a SQLite file or a PostgreSQL URL (`stores.open_store`).
    """
    config = ReceiverConfig(
        db_path,
        token,
        max_body_bytes,
        link_keys,
        read_token,
        public_read=public_read,
        stream_slots=slots_for(threads),
        stream_seconds=stream_seconds,
    )
    app = create_app(config)
    store: Store = app.extensions["bounceback_store"]
    server = BackgroundServer(app, host, port, threads, max_body_bytes, request_timeout)
    server.start()
    try:
        yield RunningReceiver(server.url, callback_url(server.url, token), store, app, server)
    finally:
        server.stop()
        store.close()


def callback_url(base: str, token: str | None) -> str:
    return f"{base}/callback/{token}" if token else f"{base}/callback"


MASK = "****"


def masked_callback_url(base: str, token: str | None) -> str:
    """The callback URL fit for a log: the token's place shown, never the token."""
    return callback_url(base, MASK if token else None)
