"""The callback endpoint: `POST /callback`, or `POST /callback/<token>` when a token is set.

The view is thin: `payload.read_batch` decides the reply, `store.record_callback` commits the
callback to the log, and only then is the 200 sent.
"""

from __future__ import annotations

import hmac
import logging
import time

from flask import Blueprint, Response, request

from reference_impl.protocol import replies as r
from reference_impl.protocol.payload import PayloadRejected, read_batch
from reference_impl.receiver.responses import not_found, reply
from reference_impl.receiver.store import RawCallback, Store

log = logging.getLogger("bounceback.receiver")


def callback_blueprint(store: Store, token: str | None, max_body_bytes: int) -> Blueprint:
    """The callback routes for a receiver logging into `store`, guarded by `token` if set."""
    blueprint = Blueprint("callback", __name__)
    expected_token = token.encode() if token else None

    def receive() -> Response:
        if request.content_length is not None and request.content_length > max_body_bytes:
            return reply(r.error_reply(413, r.BODY_TOO_LARGE))
        body = request.get_data(cache=False)
        raw = RawCallback(body, request.remote_addr, request.content_type, time.time())
        try:
            batch = read_batch(body)
        except PayloadRejected as rejected:
            log.info("callback refused: %s", rejected)
            return reply(rejected.reply)
        answer = batch.reply()
        try:
            store.record_callback(raw, batch)
        except Exception:
            log.exception("callback could not be stored; answering 500 so the ESP retries")
            return reply(r.error_reply(500, r.SERVER_ERROR))
        return reply(answer)

    @blueprint.post("/callback")
    def callback() -> Response:
        if expected_token is not None:
            return reply(r.error_reply(401, r.UNAUTHORIZED))
        return receive()

    @blueprint.post("/callback/<path:token>")
    def callback_with_token(token: str) -> Response:
        if expected_token is None:
            return not_found(r.NOT_FOUND)
        if not hmac.compare_digest(token.encode(), expected_token):
            return reply(r.error_reply(401, r.UNAUTHORIZED))
        return receive()

    return blueprint
