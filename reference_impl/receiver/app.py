"""The Flask application factory for the reference callback receiver.

The routes live in four blueprints: the callback endpoint (`callback.py`), the read API
(`read_api.py`), the preference center (`preference_center.py`) and the dashboard
(`dashboard/`). This module binds them to one store and holds the error handlers: every answer
of a JSON route, errors (404, 405 with its `Allow`, 413, 500) and OPTIONS included, has the
protocol's JSON shape, so an ESP never has to parse two formats. The server's own refusals of bad
framing have it too (`server.py`). The HTML pages answer their own errors as pages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from reference_impl.protocol import replies as r
from reference_impl.protocol.links import LinkKey
from reference_impl.receiver.access import ReadAccess
from reference_impl.receiver.callback import callback_blueprint
from reference_impl.receiver.dashboard import dashboard_blueprint
from reference_impl.receiver.dashboard.stream import DEFAULT_STREAM_SECONDS
from reference_impl.receiver.preference_center import preference_blueprint
from reference_impl.receiver.read_api import read_api_blueprint
from reference_impl.receiver.responses import QueryError, reply
from reference_impl.receiver.store import Store
from reference_impl.receiver.stores import open_store

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024

log = logging.getLogger("bounceback.receiver")


@dataclass(frozen=True)
class ReceiverConfig:
    # A SQLite file, or a PostgreSQL URL (`stores.open_store`).
    db_path: Path | str
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Keys the preference page accepts for signed links (protocol.links); the first signs.
    link_keys: tuple[LinkKey, ...] = ()
    # Bearer token of the read API (/api/...); None means the callback token, if any, guards it.
    read_token: str | None = None
    # Reads (the dashboard, /api/...) need no token even when one is set; a reset still does.
    public_read: bool = False
    # Live-feed streams held open at once, each holding one server thread (dashboard/stream.py);
    # the CLI gives half of --threads. Past it a stream answers what is new and ends at once.
    stream_slots: int = 2
    # How long one live-feed stream lasts before the browser reconnects (EventSource retry).
    stream_seconds: float = DEFAULT_STREAM_SECONDS

    @property
    def effective_read_token(self) -> str | None:
        return self.read_token or self.token

    @property
    def access(self) -> ReadAccess:
        return ReadAccess(self.effective_read_token, self.public_read)


class _ReceiverFlask(Flask):
    def make_default_options_response(self) -> Response:
        """OPTIONS answers in the one JSON shape, with the `Allow` Flask computed."""
        allow = super().make_default_options_response().headers["Allow"]
        response = reply(r.batch_reply(0, []))
        response.headers["Allow"] = allow
        return response


def create_app(config: ReceiverConfig, store: Store | None = None) -> Flask:
    """Build a receiver bound to `store` (by default the one `config.db_path` names)."""
    app = _ReceiverFlask("reference_impl")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    db: Store = store if store is not None else open_store(config.db_path)
    app.extensions["bounceback_store"] = db
    app.register_blueprint(callback_blueprint(db, config.token, config.max_body_bytes))
    app.register_blueprint(read_api_blueprint(db, config.access))
    app.register_blueprint(preference_blueprint(db, config.link_keys))
    app.register_blueprint(
        dashboard_blueprint(db, config.access, config.stream_slots, config.stream_seconds)
    )

    @app.errorhandler(QueryError)
    def bad_query(error: QueryError) -> Response:
        return reply(r.error_reply(400, str(error)))

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> Response:
        return reply(r.error_reply(413, r.BODY_TOO_LARGE))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        messages = {404: r.NOT_FOUND, 405: r.METHOD_NOT_ALLOWED}
        status = error.code or 500
        response = reply(r.error_reply(status, messages.get(status, error.description or "")))
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return response

    @app.errorhandler(Exception)
    def server_error(error: Exception) -> Response:
        log.exception("unexpected error")
        return reply(r.error_reply(500, r.SERVER_ERROR))

    return app
