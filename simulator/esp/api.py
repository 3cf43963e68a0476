"""Read-only GET endpoints over the spool: what was received over SMTP and what was sent back.

`GET /messages`, `/batches`, `/attempts`, `/dead-letters` (each `?limit=N`, newest first) and
`/stats`, as JSON. `/dead-letters` lists the batches no receiver took (unreadable JSON, a single
event still too large, or a spent retry schedule), each with its reason and the last answer.
A plain stdlib server on its own thread; each request opens its own spool connection.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulator.esp.spool import SpoolReader

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
TABLE_ROUTES = ("/messages", "/batches", "/attempts", "/dead-letters")
"""The listed tables, in the order `bounceback esp --list` prints them."""
ROUTES = (*TABLE_ROUTES, "/stats")
NOT_FOUND = "not found; try one of " + ", ".join(ROUTES)
BAD_LIMIT = "limit must be an integer from 1 to 10000"


def listing(reader: SpoolReader, route: str, limit: int) -> Any:
    """The JSON document for one route; shared by the HTTP endpoints and `bounceback esp --list`."""
    if route == "/messages":
        return {"messages": reader.messages(limit)}
    if route == "/batches":
        return {"batches": reader.batches(limit)}
    if route == "/attempts":
        return {"attempts": reader.attempts(limit)}
    if route == "/dead-letters":
        return {"dead_letters": reader.dead_letters(limit)}
    if route == "/stats":
        return reader.stats()
    raise KeyError(route)


class SpoolAPI:
    """`with SpoolAPI(spool, port=0) as api: httpx.get(api.url + "/messages")`."""

    def __init__(self, spool_path: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        spool = spool_path

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the ESP's own log says what matters."""

            def _send(self, status: int, document: Any) -> None:
                body = json.dumps(document).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path not in ROUTES:
                    self._send(404, {"error": NOT_FOUND})
                    return
                raw = parse_qs(parts.query).get("limit", [str(DEFAULT_LIMIT)])[0]
                if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
                    self._send(400, {"error": BAD_LIMIT})
                    return
                reader = SpoolReader(spool)
                try:
                    self._send(200, listing(reader, parts.path, int(raw)))
                finally:
                    reader.close()

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SpoolAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
