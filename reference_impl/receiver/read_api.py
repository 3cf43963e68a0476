"""The read API: what the receiver made of the log (`/api/...`), its health and its OpenAPI.

The log holds recipients' addresses, so with a token set every `/api/` route asks for it as
`Authorization: Bearer TOKEN` (compared in constant time); `/healthz` and `/openapi.json` hold no
personal data and stay open for probes. Lists are paged: `limit` items at most (default 100, at
most 1000), and `next` is the `after` of the following page, null on the last one; a `Link:
<...>; rel="next"` header carries the same page as a URL.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from reference_impl.protocol import replies as r
from reference_impl.receiver.openapi import openapi_document
from reference_impl.receiver.responses import (
    INT64_MAX,
    checked_int,
    json_response,
    not_found,
    query_int,
    reply,
)
from reference_impl.receiver.store import EventCursor, Store

DEFAULT_PAGE = 100
MAX_PAGE = 1000
# A page of raw callbacks also ends once its bodies pass this many bytes (always one at least).
CALLBACK_PAGE_BYTES = 16 * 1024 * 1024
BEARER = "Bearer "


def _page_reply(key: str, items: list, cursor: str | int | None) -> Response:
    response = json_response(200, {key: items, "next": cursor})
    if cursor is not None:
        query = {**request.args.to_dict(), "after": cursor}
        response.headers["Link"] = f'<{request.path}?{urlencode(query)}>; rel="next"'
    return response


def read_api_blueprint(store: Store, token: str | None = None) -> Blueprint:
    """The read routes over `store`; `/api/` asks for `token` as a bearer token when it is set."""
    blueprint = Blueprint("read_api", __name__)
    expected = token.encode() if token else None

    @blueprint.before_request
    def authorize() -> Response | None:
        if expected is None or not request.path.startswith("/api/"):
            return None
        given = request.headers.get("Authorization", "")
        presented = given[len(BEARER) :].strip() if given.startswith(BEARER) else ""
        if hmac.compare_digest(presented.encode(), expected):
            return None
        response = reply(r.error_reply(401, r.READ_UNAUTHORIZED))
        response.headers["WWW-Authenticate"] = 'Bearer realm="bounceback read API"'
        return response

    def limit() -> int:
        return query_int("limit", 1, MAX_PAGE) or DEFAULT_PAGE

    @blueprint.get("/healthz")
    def healthz() -> Response:
        return json_response(200, {"status": "ok", "counts": store.counts()})

    @blueprint.get("/api/profiles/<path:email>")
    def profile(email: str) -> Response:
        found = store.profile(email)
        return json_response(200, found) if found else not_found(f"no profile for {email!r}")

    @blueprint.get("/api/events")
    def events() -> Response:
        kind = request.args.get("type") or None
        after = EventCursor.parse(request.args.get("after") or None)
        size = limit()
        page = store.event_page(kind, query_int("message_id"), after, size)
        cursor = EventCursor.of(page[-1]).text if len(page) == size else None
        return _page_reply("events", page, cursor)

    @blueprint.get("/api/callbacks")
    def callbacks() -> Response:
        after = query_int("after", 0, INT64_MAX) or 0
        size = limit()
        page = store.callbacks(after, size, CALLBACK_PAGE_BYTES)
        cursor = page[-1]["id"] if len(page) == size or _over(page) else None
        return _page_reply("callbacks", page, cursor)

    @blueprint.get("/api/campaigns/<message_id>")
    def campaign(message_id: str) -> Response:
        number = checked_int("path parameter 'message_id'", message_id)
        report = store.campaign(number)
        return json_response(200, report) if report else not_found(f"no campaign {number}")

    @blueprint.get("/api/labels/<path:label>")
    def label(label: str) -> Response:
        report = store.label_report(label)
        return json_response(200, report) if report else not_found(f"no label {label!r}")

    @blueprint.get("/api/sent")
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
            for m in store.sent_messages()
        ]
        return json_response(200, {"sent": messages})

    @blueprint.get("/api/unattributed")
    def unattributed() -> Response:
        return json_response(200, {"events": store.unattributed()})

    @blueprint.get("/openapi.json")
    def openapi() -> Response:
        return json_response(200, openapi_document())

    return blueprint


def _over(page: list) -> bool:
    """Whether the page was cut by its byte budget (a body decoded with replacement characters
    is never shorter in UTF-8 than the bytes the store counted)."""
    return bool(page) and sum(len(c["body"].encode()) for c in page) >= CALLBACK_PAGE_BYTES
