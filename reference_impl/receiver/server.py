"""Serving a WSGI app with waitress, on the main thread (the CLI) or a background one (tests).

waitress is a production server with no C extensions, so the same server runs under the CLI, the
demo and the tests. Stopping it from another thread must happen on its own loop: the trigger runs
`close_all` there, the map empties and `run()` returns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

from reference_impl.errors import PlatformError
from reference_impl.protocol.links import LinkKey
from reference_impl.receiver.app import DEFAULT_MAX_BODY_BYTES, ReceiverConfig, create_app
from reference_impl.receiver.store import Store

WSGIApp = Callable[..., Any]
log = logging.getLogger("bounceback.server")


class ServerError(PlatformError):
    """The server could not start, for instance because the port is taken."""


class BackgroundServer:
    """A waitress server on a daemon thread; `url` is known as soon as it is constructed."""

    def __init__(
        self,
        app: WSGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        threads: int = 4,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        try:
            self._server = create_server(
                app,
                host=host,
                port=port,
                threads=threads,
                max_request_body_size=2 * max_body_bytes + 1024 * 1024,
                ident="bounceback",
                clear_untrusted_proxy_headers=True,
            )
        except OSError as exc:
            raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
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
) -> Iterator[RunningReceiver]:
    """Start the reference receiver on a real socket for the duration of the block.

    `db_path` is a SQLite file or a PostgreSQL URL (`stores.open_store`).
    """
    config = ReceiverConfig(db_path, token, max_body_bytes, link_keys)
    app = create_app(config)
    store: Store = app.extensions["bounceback_store"]
    server = BackgroundServer(app, host, port, threads, max_body_bytes)
    server.start()
    try:
        yield RunningReceiver(server.url, callback_url(server.url, token), store, app, server)
    finally:
        server.stop()
        store.close()


def callback_url(base: str, token: str | None) -> str:
    return f"{base}/callback/{token}" if token else f"{base}/callback"
