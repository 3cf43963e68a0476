"""The Flask application factory for the reference callback receiver.

The view functions are thin: `payload.read_batch` decides the reply, `store.record_callback`
commits the callback to the log, and only then is the 200 sent. Every error, including 404, 405,
413 and 500, has the protocol's JSON shape, so an ESP never has to parse two formats.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from reference_impl.errors import PlatformError
from reference_impl.protocol import replies as r
from reference_impl.protocol.links import LinkKey
from reference_impl.protocol.meta import MetaError, parse_meta
from reference_impl.protocol.payload import PayloadRejected, read_batch
from reference_impl.receiver import preferences
from reference_impl.receiver.openapi import openapi_document
from reference_impl.receiver.store import RawCallback, SQLiteStore, Store

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
JSON_TYPE = "application/json"

log = logging.getLogger("bounceback.receiver")


@dataclass(frozen=True)
class ReceiverConfig:
    db_path: Path
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Keys the preference page accepts for signed links (protocol.links); the first signs.
    link_keys: tuple[LinkKey, ...] = ()


def json_response(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, mimetype=JSON_TYPE)


def _reply(reply: r.Reply) -> Response:
    return json_response(reply.status, reply.body)


def _not_found(message: str) -> Response:
    return _reply(r.error_reply(404, message))


def _query_int(name: str) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise QueryError(f"query parameter {name!r} must be an integer, got {value!r}") from None


class QueryError(PlatformError):
    """A read-endpoint query parameter is malformed."""


def create_app(config: ReceiverConfig, store: Store | None = None) -> Flask:
    """Build a receiver bound to `store` (by default a SQLite file at `config.db_path`)."""
    app = Flask("reference_impl")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    db: Store = store if store is not None else SQLiteStore(config.db_path)
    app.extensions["bounceback_store"] = db
    expected_token = config.token.encode() if config.token else None

    def receive() -> Response:
        if request.content_length is not None and request.content_length > config.max_body_bytes:
            return _reply(r.error_reply(413, r.BODY_TOO_LARGE))
        body = request.get_data(cache=False)
        raw = RawCallback(body, request.remote_addr, request.content_type, time.time())
        try:
            batch = read_batch(body)
        except PayloadRejected as rejected:
            log.info("callback refused: %s", rejected)
            return _reply(rejected.reply)
        reply = batch.reply()
        try:
            db.record_callback(raw, batch)
        except Exception:
            log.exception("callback could not be stored; answering 500 so the ESP retries")
            return _reply(r.error_reply(500, r.SERVER_ERROR))
        return _reply(reply)

    @app.post("/callback")
    def callback() -> Response:
        if expected_token is not None:
            return _reply(r.error_reply(401, r.UNAUTHORIZED))
        return receive()

    @app.post("/callback/<path:token>")
    def callback_with_token(token: str) -> Response:
        if expected_token is None:
            return _not_found(r.NOT_FOUND)
        if not hmac.compare_digest(token.encode(), expected_token):
            return _reply(r.error_reply(401, r.UNAUTHORIZED))
        return receive()

    @app.get("/healthz")
    def healthz() -> Response:
        return json_response(200, {"status": "ok", "counts": db.counts()})

    @app.get("/api/profiles/<path:email>")
    def profile(email: str) -> Response:
        found = db.profile(email)
        return json_response(200, found) if found else _not_found(f"no profile for {email!r}")

    @app.get("/api/events")
    def events() -> Response:
        kind = request.args.get("type") or None
        return json_response(200, {"events": db.events(kind, _query_int("message_id"))})

    @app.get("/api/callbacks")
    def callbacks() -> Response:
        after = _query_int("after") or 0
        limit = min(max(_query_int("limit") or 100, 1), 1000)
        return json_response(200, {"callbacks": db.callbacks(after, limit)})

    @app.get("/api/campaigns/<int(signed=True):message_id>")
    def campaign(message_id: int) -> Response:
        report = db.campaign(message_id)
        return json_response(200, report) if report else _not_found(f"no campaign {message_id}")

    @app.get("/api/labels/<path:label>")
    def label(label: str) -> Response:
        report = db.label_report(label)
        return json_response(200, report) if report else _not_found(f"no label {label!r}")

    @app.get("/api/sent")
    def sent() -> Response:
        messages = [
            {
                "recipient": m.recipient,
                "meta": m.meta,
                "message_id": m.message_id,
                "label": m.label,
                "variant": m.variant,
                "sent_at": m.sent_at,
            }
            for m in db.sent_messages()
        ]
        return json_response(200, {"sent": messages})

    @app.route("/preferences", methods=["GET", "POST"])
    def preference_center() -> Response:
        meta_value = request.args.get("meta", "")
        try:
            meta = parse_meta(meta_value)
        except MetaError:
            return Response(preferences.invalid_page(), status=400, mimetype="text/html")
        body = preferences.unsubscribe_body(meta_value, meta)
        batch = read_batch(body)
        if not batch.accepted:
            # Logging it anyway would store a callback with no event and unsubscribe nobody.
            log.warning("preference link for %r unusable: %s", meta.email, batch.unprocessed)
            page = preferences.invalid_page(preferences.UNUSABLE_LINK)
            return Response(page, status=400, mimetype="text/html")
        if request.method == "POST":
            raw = RawCallback(body, request.remote_addr, JSON_TYPE, time.time())
            db.record_callback(raw, batch)
        profile = db.profile(meta.email)
        subscribed = profile["subscribed"] if profile else True
        return Response(preferences.page(meta.email, subscribed), mimetype="text/html")

    @app.get("/api/unattributed")
    def unattributed() -> Response:
        return json_response(200, {"events": db.unattributed()})

    @app.get("/openapi.json")
    def openapi() -> Response:
        return json_response(200, openapi_document())

    @app.errorhandler(QueryError)
    def bad_query(error: QueryError) -> Response:
        return _reply(r.error_reply(400, str(error)))

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> Response:
        return _reply(r.error_reply(413, r.BODY_TOO_LARGE))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        messages = {404: r.NOT_FOUND, 405: r.METHOD_NOT_ALLOWED}
        status = error.code or 500
        return _reply(r.error_reply(status, messages.get(status, error.description or "")))

    @app.errorhandler(Exception)
    def server_error(error: Exception) -> Response:
        log.exception("unexpected error")
        return _reply(r.error_reply(500, r.SERVER_ERROR))

    return app
