"""Read-only GET endpoints over the spool: what was received over SMTP and what was sent back.

`GET /messages`, `/batches`, `/attempts`, `/dead-letters` (each `?limit=N`, newest first) and
`/stats`, as JSON. `/dead-letters` lists the batches no receiver took (unreadable JSON, a single
event still too large, or a spent retry schedule), each with its reason and the last answer.
`SpoolAPI` serves them over a spool file (`web/` holds the app and its waitress runner);
`FakeESP(api_port=...)` serves them, the dashboard and the controls while it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    """`with SpoolAPI(spool, port=0) as api: httpx.get(api.url + "/messages")`.

    The read API and the dashboard over a spool file, without a running ESP (so without its
    controls): the same app `FakeESP` serves, on its own waitress thread.
    """

    def __init__(
        self,
        spool_path: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        read_token: str | None = None,
    ) -> None:
        from simulator.esp.web.app import WebConfig, create_app
        from simulator.esp.web.guard import is_loopback
        from simulator.esp.web.server import WebServer

        config = WebConfig(Path(spool_path), read_token, exposed=not is_loopback(host))
        self._server = WebServer(create_app(config), host, port)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> SpoolAPI:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
