"""A waitress server for the fake ESP's app, on its own thread.

The ESP side's own small runner (it never imports the platform side's): waitress, with no C
extensions, serves the same way in tests and under `bounceback esp`. Its threads serve the
read API, the dashboard and its streams (each stream ends by itself after a while, so a few
open tabs cannot hold every thread for long).
"""

from __future__ import annotations

import logging
import threading

from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

log = logging.getLogger("simulator.esp.web")

THREADS = 8
IDENT = "bounceback-fake-esp"


class WebServer:
    """`WebServer(app, host, port).start()`; `url` is known once built (port 0 = a free one).

    Building it binds the socket, so a taken port raises `OSError` before any thread starts.
    """

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0) -> None:
        # Its own socket map: waitress's default one is shared by every server of the process.
        self._server = create_server(
            app,
            map={},
            host=host,
            port=port,
            threads=THREADS,
            ident=IDENT,
            clear_untrusted_proxy_headers=True,
        )
        self.host = host
        self.port = int(self._server.effective_port)  # type: ignore[union-attr]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        self._thread = threading.Thread(target=self._server.run, name="esp-api", daemon=True)

    def start(self) -> WebServer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close the sockets on the server's own loop, then wait for its worker threads.

        The loop may already be gone: waitress's loop can close its own trigger on a racing
        EBADF (Pylons/waitress#468), and pulling a closed trigger raises. Then what is left is
        closed from here, so stopping never fails the caller's `with` block.
        """
        server = self._server
        try:
            if not self._thread.is_alive():
                raise OSError("the server loop is not running")
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))  # type: ignore[union-attr]
        except OSError as exc:
            log.warning("waitress loop already down (%s); closing its sockets directly", exc)
            wasyncore.close_all(server._map)  # type: ignore[union-attr]
        if self._thread.ident is not None:  # started, so there is a thread to wait for
            self._thread.join(timeout)
        server.task_dispatcher.shutdown(timeout=timeout)  # type: ignore[union-attr]
