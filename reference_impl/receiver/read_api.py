"""The read API: what the receiver made of the log (`/api/...`), its health and its OpenAPI.

The log holds recipients' addresses, so with a token set every `/api/` route asks for it as
`Authorization: Bearer TOKEN` (compared in constant time), or the dashboard's cookie
(`access.py`); `/healthz` and `/openapi.json` hold no personal data and stay open for probes.
`DELETE /api/state` empties the store between tests: it asks for the token whenever one is set
(`--public-read` included) and refuses a request another site's page sent.

Lists are paged: `limit` items at most (default 100, at most 1000), `next` is the `after` to send
for the following page (opaque: send it back as given) and null once there is nothing more; a
`Link: <...>; rel="next"` header carries the same page as a URL. A page may be short, even empty,
and still have a `next`. `/api/callbacks` lists each callback's summary; its body (up to the
receiver's body limit) comes with `body=true` or from `/api/callbacks/<id>`, so a default page
costs the same whatever the callbacks hold.

The dashboard (`dashboard/`) shows what these routes answer through the same functions (the
store's reads, `feed_page`), so the page and the API cannot disagree.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from reference_impl.protocol import replies as r
from reference_impl.receiver.access import ReadAccess, cross_site
from reference_impl.receiver.openapi import openapi_document
from reference_impl.receiver.responses import (
    INT64_MAX,
    QueryError,
    checked_int,
    json_response,
    not_found,
    query_flag,
    query_int,
    reply,
)
from reference_impl.receiver.store import (
    CALLBACK_PAGE_BYTES,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    EventCursor,
    Store,
)

log = logging.getLogger("bounceback.receiver")


def _page_reply(key: str, items: list, cursor: str | int | None) -> Response:
    """Every paged list answers this one shape: `{key: items, "next": cursor}`, and a `Link`
    header to the same request with `after` set to `cursor` while there may be more."""
    response = json_response(200, {key: items, "next": cursor})
    if cursor is not None:
        query = {**request.args.to_dict(), "after": cursor}
        response.headers["Link"] = f'<{request.path}?{urlencode(query)}>; rel="next"'
    return response


def unauthorized() -> Response:
    """The 401 of a read (or reset) without the token, in the one JSON shape."""
    response = reply(r.error_reply(401, r.READ_UNAUTHORIZED))
    response.headers["WWW-Authenticate"] = 'Bearer realm="bounceback read API"'
    return response


def callback_summary(item: dict[str, Any]) -> dict[str, Any]:
    """A logged callback as `/api/callbacks` lists it and the live feed shows it (a row of
    `Store.feed` or `Store.callbacks`): status, the reply's counts and error, the body's size.
    A summary is a few hundred bytes whatever the body, so a page of them costs the same for
    callbacks of one event or of a thousand."""
    response = item["response"]
    return {
        "id": item["id"],
        "received_at": item["received_at"],
        "remote_addr": item["remote_addr"],
        "content_type": item["content_type"],
        "status": item["status"],
        "total": response.get(r.TOTAL_KEY, 0),
        "processed": response.get(r.PROCESSED_KEY, 0),
        "unprocessed": len(response.get(r.UNPROCESSED_KEY, [])),
        "error": response.get(r.ERROR_KEY),
        "bytes": item["bytes"],
    }


def callback_with_body(item: dict[str, Any]) -> dict[str, Any]:
    """A row of `Store.callbacks` as `/api/callbacks?body=true` lists it: the summary, the body
    as received (as text) and the stored reply."""
    return {**callback_summary(item), "body": item["body"], "response": item["response"]}


def feed_page(store: Store, after: int, size: int) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the live feed (`/api/feed`, and the dashboard's stream): the raw log's rows past
    `after` as `callback_summary` gives them, and the cursor of the next page."""
    page = store.feed(after, size)
    cursor = page[-1]["id"] if len(page) == size else None
    return [callback_summary(c) for c in page], cursor


def read_api_blueprint(store: Store, access: ReadAccess | None = None) -> Blueprint:
    """The read routes over `store`; `/api/` asks for the token of `access` when it guards reads,
    and the reset whenever a token is set."""
    blueprint = Blueprint("read_api", __name__)
    guard = access or ReadAccess(None)

    @blueprint.before_request
    def authorize() -> Response | None:
        if not request.path.startswith("/api/") or request.method == "DELETE":
            return None
        return None if guard.may_read(request.headers, request.cookies) else unauthorized()

    def limit() -> int:
        return query_int("limit", 1, MAX_PAGE_SIZE) or PAGE_SIZE

    def after_id() -> int:
        return query_int("after", 0, INT64_MAX) or 0

    @blueprint.get("/healthz")
    def healthz() -> Response:
        return json_response(200, {"status": "ok", "counts": store.counts()})

    @blueprint.get("/api/profiles/<path:email>")
    def profile(email: str) -> Response:
        found = store.profile(email)
        return json_response(200, found) if found else not_found(f"no profile for {email!r}")

    @blueprint.delete("/api/state")
    def reset() -> Response:
        if cross_site(
            request.headers.get("Sec-Fetch-Site"), request.headers.get("Origin"), request.host
        ):
            return reply(r.error_reply(403, r.RESET_CROSS_SITE))
        if guard.token is None and guard.public_read:
            return reply(r.error_reply(403, r.RESET_PUBLIC))
        if not guard.may_reset(request.headers, request.cookies):
            return unauthorized()
        store.reset()
        log.warning("state reset: the log and everything derived from it were emptied")
        return json_response(200, {"status": "reset", "counts": store.counts()})

    @blueprint.get("/api/events")
    def events() -> Response:
        kind = request.args.get("type") or None
        after = EventCursor.parse(request.args.get("after") or None)
        size = limit()
        page = store.event_page(
            kind,
            query_int("message_id"),
            after,
            size,
            name=request.args.get("name") or None,
            label=request.args.get("label") or None,
        )
        cursor = EventCursor.of(page[-1]).text if len(page) == size else None
        return _page_reply("events", page, cursor)

    @blueprint.get("/api/callbacks")
    def callbacks() -> Response:
        size = limit()
        if not query_flag("body"):
            return _page_reply("callbacks", *feed_page(store, after_id(), size))
        page = store.callbacks(after_id(), size, CALLBACK_PAGE_BYTES)
        cursor = page[-1]["id"] if len(page) == size or _over(page) else None
        return _page_reply("callbacks", [callback_with_body(c) for c in page], cursor)

    @blueprint.get("/api/callbacks/<callback_id>")
    def callback(callback_id: str) -> Response:
        number = checked_int("path parameter 'callback_id'", callback_id, 1, INT64_MAX)
        found = store.callback(number)
        return json_response(200, found) if found else not_found(f"no callback {number}")

    @blueprint.get("/api/feed")
    def feed() -> Response:
        return _page_reply("callbacks", *feed_page(store, after_id(), limit()))

    @blueprint.get("/api/timeline")
    def timeline() -> Response:
        message_id = query_int("message_id")
        label = request.args.get("label") or None
        if message_id is None and label is None:
            raise QueryError("give query parameter 'message_id' or 'label' (or both)")
        return json_response(200, store.timeline(message_id, label))

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
        page = store.sent_page(after_id(), limit())
        messages = [
            {
                "recipient": m.recipient,
                "meta": m.meta,
                "message_id": m.message_id,
                "label": m.label,
                "variant": m.variant,
                "sent_at": m.sent_at,
            }
            for m in page.items
        ]
        return _page_reply("sent", messages, page.after)

    @blueprint.get("/api/unattributed")
    def unattributed() -> Response:
        page = store.unattributed(after_id(), limit())
        return _page_reply("events", page.items, page.after)

    @blueprint.get("/openapi.json")
    def openapi() -> Response:
        return json_response(200, openapi_document())

    return blueprint


def _over(page: list) -> bool:
    """Whether the page was cut by its byte budget (a body decoded with replacement characters
    is never shorter in UTF-8 than the bytes the store counted)."""
    return bool(page) and sum(len(c["body"].encode()) for c in page) >= CALLBACK_PAGE_BYTES
