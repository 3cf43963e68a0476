"""The read API: what the receiver made of the log (`/api/...`), its health and its OpenAPI."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, request

from reference_impl.receiver.openapi import openapi_document
from reference_impl.receiver.responses import QueryError, json_response, not_found, query_int
from reference_impl.receiver.store import MAX_PAGE_SIZE, PAGE_SIZE, Page, Store


def page_limit() -> int:
    """The `limit` query parameter: PAGE_SIZE when absent, at most MAX_PAGE_SIZE."""
    limit = query_int("limit")
    if limit is None:
        return PAGE_SIZE
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise QueryError(f"query parameter 'limit' must be 1 to {MAX_PAGE_SIZE}, got {limit}")
    return limit


def next_link(page: Page) -> str | None:
    """The same request for the following page, or None when this one is the last."""
    if page.after is None:
        return None
    query = {**request.args.to_dict(), "after": str(page.after)}
    return f"{request.path}?{urlencode(query)}"


def read_api_blueprint(store: Store) -> Blueprint:
    """The read routes over `store`."""
    blueprint = Blueprint("read_api", __name__)

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
        return json_response(200, {"events": store.events(kind, query_int("message_id"))})

    @blueprint.get("/api/callbacks")
    def callbacks() -> Response:
        after = query_int("after") or 0
        limit = min(max(query_int("limit") or 100, 1), 1000)
        return json_response(200, {"callbacks": store.callbacks(after, limit)})

    @blueprint.get("/api/campaigns/<int(signed=True):message_id>")
    def campaign(message_id: int) -> Response:
        report = store.campaign(message_id)
        return json_response(200, report) if report else not_found(f"no campaign {message_id}")

    @blueprint.get("/api/labels/<path:label>")
    def label(label: str) -> Response:
        report = store.label_report(label)
        return json_response(200, report) if report else not_found(f"no label {label!r}")

    @blueprint.get("/api/sent")
    def sent() -> Response:
        page = store.sent_page(query_int("after") or 0, page_limit())
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
        return json_response(200, {"sent": messages, "next": next_link(page)})

    @blueprint.get("/api/unattributed")
    def unattributed() -> Response:
        page = store.unattributed(query_int("after") or 0, page_limit())
        return json_response(200, {"events": page.items, "next": next_link(page)})

    @blueprint.get("/openapi.json")
    def openapi() -> Response:
        return json_response(200, openapi_document())

    return blueprint
