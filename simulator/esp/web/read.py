"""The read API: what was received over SMTP and what was sent back, as JSON.

`GET /messages`, `/batches`, `/attempts`, `/dead-letters` (each `?limit=N`, newest first) and
`/stats`; the documents are `simulator.esp.api.listing`'s, the same `--list` prints. Each request
opens its own spool connection, so requests never share one across threads.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from simulator.esp.api import BAD_LIMIT, DEFAULT_LIMIT, MAX_LIMIT, NOT_FOUND, ROUTES, listing
from simulator.esp.spool import SpoolReader


def read_limit() -> int | None:
    """`?limit=` as an int in 1..MAX_LIMIT, DEFAULT_LIMIT when absent, None when wrong."""
    raw = request.args.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        return None
    return int(raw)


def read_blueprint() -> Blueprint:
    blueprint = Blueprint("read", __name__)

    def route(path: str) -> None:
        def view() -> object:
            limit = read_limit()
            if limit is None:
                return jsonify(error=BAD_LIMIT), 400
            reader = SpoolReader(current_app.config["ESP"].spool_path)
            try:
                return jsonify(listing(reader, path, limit))
            finally:
                reader.close()

        blueprint.add_url_rule(path, endpoint=path.strip("/").replace("-", "_"), view_func=view)

    for path in ROUTES:
        route(path)

    @blueprint.app_errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> object:
        text = NOT_FOUND if exc.code == 404 else exc.description
        return jsonify(error=text), exc.code

    return blueprint
