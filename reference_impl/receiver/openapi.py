"""The OpenAPI 3.1 description served at `/openapi.json`.

The callback payload schema is not repeated here: it is the shipped JSON Schema file, embedded at
build time, so the two cannot disagree. Tests compare this document with the app's URL map and
validate real responses against it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from reference_impl.protocol import replies as r
from reference_impl.protocol.limits import MAX_SIGNATURE_LENGTH
from reference_impl.receiver.access import COOKIE_NAME
from reference_impl.receiver.store import (
    CALLBACK_PAGE_BYTES,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    TIMELINE_BUCKETS,
)

PAYLOAD_SCHEMA_FILE = "schemas/callback-v2.schema.json"


def payload_schema() -> dict[str, Any]:
    text = (
        resources.files("reference_impl.receiver").joinpath(PAYLOAD_SCHEMA_FILE).read_text("utf-8")
    )
    return json.loads(text)


def _embedded_payload_schemas() -> dict[str, Any]:
    """The payload schema's `$defs` become components, so OpenAPI tools resolve every `$ref`."""
    text = json.dumps(payload_schema()).replace('"#/$defs/', f'"#/components/schemas/{_PREFIX}')
    schema = json.loads(text)
    definitions = schema.pop("$defs")
    for key in ("$id", "$schema"):
        schema.pop(key)
    return {"CallbackPayload": schema} | {_PREFIX + k: v for k, v in definitions.items()}


_PREFIX = "Callback_"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _error(description: str) -> dict[str, Any]:
    return _json("ErrorResponse", description)


_COUNTS = {
    r.TOTAL_KEY: {"type": "integer", "minimum": 0},
    r.PROCESSED_KEY: {"type": "integer", "minimum": 0},
}

_NEXT_TEXT = (
    "The `after` to send for the following page, as given; null once there is nothing more. A"
    " page may be short, even empty, and still have a `next`."
)
_NEXT = {"type": ["integer", "null"], "description": _NEXT_TEXT}
_NEXT_EVENT = {"type": ["string", "null"], "description": _NEXT_TEXT}


def _paged(key: str, items: dict[str, Any], cursor: dict[str, Any] = _NEXT) -> dict[str, Any]:
    """A page of a list read: the items under `key` and the `next` cursor."""
    return {
        "type": "object",
        "required": [key, "next"],
        "properties": {key: {"type": "array", "items": items}, "next": cursor},
    }


_SCHEMAS: dict[str, Any] = {
    "BatchResponse": {
        "type": "object",
        "description": "TOTAL_EVENTS == PROCESSED_EVENTS + len(UNPROCESSED_EVENTS); `error` only "
        "when some events failed.",
        "required": [r.TOTAL_KEY, r.PROCESSED_KEY, r.UNPROCESSED_KEY],
        "additionalProperties": False,
        "properties": {
            r.ERROR_KEY: {"type": "string", "pattern": "^[0-9]+ event\\(s\\) failed to process$"},
            **_COUNTS,
            r.UNPROCESSED_KEY: {"type": "array", "items": _ref("UnprocessedEvent")},
        },
    },
    "UnprocessedEvent": {
        "type": "object",
        "description": "The event as sent plus errorDescription; an event that was not a JSON "
        "object is echoed under `event`.",
        "required": [r.ERROR_DESCRIPTION_KEY],
        "properties": {
            r.ERROR_DESCRIPTION_KEY: {
                "enum": [
                    r.INVALID_META,
                    r.UNMAPPED_TYPE,
                    r.UNMAPPED_SUCCESS_TYPE,
                    r.INVALID_EMAIL,
                    r.INVALID_DESCRIPTION,
                    r.NOT_AN_OBJECT,
                ]
            }
        },
    },
    "ErrorResponse": {
        "type": "object",
        "required": [r.ERROR_KEY, r.TOTAL_KEY, r.PROCESSED_KEY, r.UNPROCESSED_KEY],
        "additionalProperties": False,
        "properties": {
            r.ERROR_KEY: {"type": "string"},
            r.TOTAL_KEY: {"const": 0},
            r.PROCESSED_KEY: {"const": 0},
            r.UNPROCESSED_KEY: {"type": "array", "maxItems": 0},
        },
    },
    "Profile": {
        "type": "object",
        "required": ["email", "subscribed", "updated_at", "history"],
        "properties": {
            "email": {"type": "string"},
            "subscribed": {"type": "boolean"},
            "updated_at": {"type": "number"},
            "history": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["at", "cause", "meta", "subscribed", "callback_id"],
                    "properties": {
                        "at": {"type": "number"},
                        "cause": {"type": "string"},
                        "meta": {"type": "string"},
                        "subscribed": {"type": "boolean"},
                        "callback_id": {
                            "type": "integer",
                            "description": "The logged callback that brought this step.",
                        },
                    },
                },
            },
        },
    },
    "SystemEvent": {
        "type": "object",
        "required": ["id", "name", "profile", "type", "meta", "message_id", "properties"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"enum": ["Notification Failed", "Channel Unsubscribed"]},
            "profile": {"type": "string"},
            "type": {"type": "string"},
            "meta": {"type": "string"},
            "message_id": {"type": "integer"},
            "label": {"type": "string"},
            "variant": {"type": "integer"},
            "created_at": {"type": "number"},
            "properties": {"type": "object"},
        },
    },
    "EventList": _paged("events", _ref("SystemEvent"), _NEXT_EVENT),
    "RawCallback": {
        "type": "object",
        "required": ["id", "received_at", "body", "status", "response"],
        "properties": {
            "id": {"type": "integer"},
            "received_at": {"type": "number"},
            "remote_addr": {"type": ["string", "null"]},
            "content_type": {"type": ["string", "null"]},
            "body": {"type": "string"},
            "status": {"type": "integer"},
            "response": _ref("BatchResponse"),
            "bytes": {"type": "integer", "description": "The body's size as received."},
        },
    },
    "CallbackList": _paged(
        "callbacks",
        {
            "allOf": [_ref("FeedRow")],
            "type": "object",
            "description": "A logged callback's summary; with `body=true` also its body and the"
            " stored reply.",
            "properties": {
                "body": {"type": "string", "description": "Only with `body=true`."},
                "response": {**_ref("BatchResponse"), "description": "Only with `body=true`."},
            },
        },
    ),
    "CallbackDetail": {
        "allOf": [_ref("RawCallback")],
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {
                "type": "array",
                "description": "The accepted events, read from the body again; the refused ones"
                " are in `response`.",
                "items": {
                    "type": "object",
                    "required": [
                        "position",
                        "group",
                        "type",
                        "email",
                        "meta",
                        "fields",
                        "description",
                        "duplicate",
                        "attributed",
                        "system_events",
                    ],
                    "properties": {
                        "position": {"type": "integer"},
                        "group": {"enum": ["failed", "success"]},
                        "type": {"type": "string"},
                        "email": {"type": "string"},
                        "meta": {"type": "string"},
                        "fields": {
                            "type": "object",
                            "description": "The meta decoded.",
                            "required": [
                                "email",
                                "account_id",
                                "sent_at",
                                "send_date",
                                "variant",
                                "label",
                                "message_id",
                            ],
                        },
                        "description": {"type": ["string", "null"]},
                        "duplicate": {
                            "type": "boolean",
                            "description": "An earlier event had this (meta, type); ignored.",
                        },
                        "attributed": {
                            "type": "boolean",
                            "description": "The sender recorded this meta as sent.",
                        },
                        "system_events": {"type": "array", "items": _ref("SystemEvent")},
                    },
                },
            }
        },
    },
    "FeedRow": {
        "type": "object",
        "required": [
            "id",
            "received_at",
            "remote_addr",
            "content_type",
            "status",
            "total",
            "processed",
            "unprocessed",
            "error",
            "bytes",
        ],
        "properties": {
            "id": {"type": "integer"},
            "received_at": {"type": "number"},
            "remote_addr": {"type": ["string", "null"]},
            "content_type": {"type": ["string", "null"]},
            "status": {"type": "integer"},
            "total": {"type": "integer"},
            "processed": {"type": "integer"},
            "unprocessed": {"type": "integer"},
            "error": {"type": ["string", "null"]},
            "bytes": {"type": "integer"},
        },
    },
    "FeedList": _paged("callbacks", _ref("FeedRow")),
    "Timeline": {
        "type": "object",
        "required": ["start", "width", "buckets"],
        "properties": {
            "start": {"type": ["number", "null"], "description": "The first arrival."},
            "width": {"type": ["number", "null"], "description": "Seconds per bucket."},
            "buckets": {
                "type": "array",
                "maxItems": TIMELINE_BUCKETS,
                "items": {
                    "type": "object",
                    "required": ["at", "counts"],
                    "properties": {
                        "at": {"type": "number"},
                        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    },
                },
            },
        },
    },
    "Reset": {
        "type": "object",
        "required": ["status", "counts"],
        "properties": {"status": {"const": "reset"}, "counts": {"type": "object"}},
    },
    "Counts": {
        "type": "object",
        "additionalProperties": {"type": "integer", "minimum": 0},
        "required": [
            "delivered",
            "hard_bounce",
            "soft_bounce",
            "spam",
            "unsubscribed",
            "bounce",
            "send_failed",
        ],
    },
    "CampaignReport": {
        "type": "object",
        "required": ["message_id", "sent", "counts", "duplicates_ignored"],
        "properties": {
            "message_id": {"type": "integer"},
            "sent": {"type": "integer"},
            "counts": _ref("Counts"),
            "duplicates_ignored": {"type": "integer"},
        },
    },
    "LabelReport": {
        "type": "object",
        "required": ["label", "sent", "counts", "duplicates_ignored"],
        "properties": {
            "label": {"type": "string"},
            "sent": {"type": "integer"},
            "counts": _ref("Counts"),
            "duplicates_ignored": {"type": "integer"},
        },
    },
    "SentList": _paged(
        "sent",
        {
            "type": "object",
            "required": ["recipient", "meta", "message_id", "label", "variant", "sent_at"],
        },
    ),
    "Unattributed": _paged(
        "events",
        {"type": "object", "required": ["callback_id", "position", "type", "email", "meta"]},
    ),
    "Health": {
        "type": "object",
        "required": ["status", "counts"],
        "properties": {"status": {"const": "ok"}, "counts": {"type": "object"}},
    },
}


def _callback_operation(summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("CallbackPayload")}},
        },
        "responses": {
            "200": _json("BatchResponse", "Processed, fully or partly."),
            "400": _error(
                "Unreadable body, missing mandatory keys, or more than 1000 events; or HTTP"
                " framing the server refuses before the app sees it (a malformed request, or"
                " Content-Length with Transfer-Encoding, which also closes the connection)."
            ),
            "401": _error("Token missing or wrong."),
            "404": _error("No such callback URL."),
            "413": _error("Body over the size limit."),
            "431": _error("Request header fields too large."),
            "500": _error("Server error; nothing was stored, retry."),
            "501": _error("Unsupported Transfer-Encoding."),
        },
    }


def _get(
    summary: str,
    ok: str,
    *,
    params: list[dict[str, Any]] | None = None,
    missing: bool = False,
    bad_query: bool = False,
    paged: bool = False,
    guarded: bool = True,
) -> dict[str, Any]:
    responses = {
        "200": _json(ok, summary),
        "500": _error("Server error, such as a database fault; the callback log is untouched."),
    }
    if missing:
        responses["404"] = _error("Nothing recorded under that key.")
    if bad_query or paged:
        responses["400"] = _error("A query parameter is malformed or out of range (named).")
    if paged:
        responses["200"]["headers"] = {"Link": _LINK}
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if guarded:
        responses["401"] = _error("The read token is set and the request does not present it.")
        operation["security"] = [{"readToken": []}, {"dashboardCookie": []}]
    if params:
        operation["parameters"] = params
    return {"get": operation}


def _param(name: str, where: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema}


_LIMIT = _param(
    "limit",
    "query",
    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": PAGE_SIZE},
)
_AFTER = {
    **_param("after", "query", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}),
    "description": "The `next` of the previous page; absent for the first page.",
}
_PAGING = [_AFTER, _LIMIT]
_EVENT_PAGING = [
    {
        **_param("after", "query", {"type": "string"}),
        "description": "The `next` of the previous page (opaque); absent for the first page.",
    },
    _LIMIT,
]
_LINK = {
    "description": 'The following page as a URL, `<...>; rel="next"`, while `next` is not null.',
    "schema": {"type": "string"},
}
_SECURITY = {
    "readToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "`--read-token`, else `--token`; every `/api/` route and dashboard page"
        " asks for it when one is set (reads not, with `--public-read`; the reset always)."
        " `/healthz` and `/openapi.json` stay open.",
    },
    "dashboardCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE_NAME,
        "description": "Set by a dashboard page given the right `?token=`; HttpOnly,"
        " SameSite=Strict, an HMAC of the token.",
    },
}


_TOKEN = {
    **_param("token", "query", {"type": "string"}),
    "description": "The read token, once: a valid one sets an HttpOnly SameSite=Strict cookie and"
    " redirects (303) to the same URL without it; a wrong one is the 401 sign-in page.",
}
_HTML = {"text/html": {"schema": {"type": "string"}}}


def _page(summary: str, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A dashboard page: HTML, behind the read token when reads are guarded."""
    html = {"content": _HTML}
    return {
        "get": {
            "summary": summary,
            "tags": ["dashboard"],
            "parameters": [*(params or []), _TOKEN],
            "security": [{}, {"readToken": []}, {"dashboardCookie": []}],
            "responses": {
                "200": {"description": "The page.", **html},
                "303": {"description": "`token` was right: the cookie is set."},
                "400": {"description": "A query or path parameter is malformed (named).", **html},
                "401": {"description": "The sign-in page: the read token is needed.", **html},
                "404": {"description": "Nothing recorded under that key.", **html},
            },
        }
    }


def _dashboard_paths() -> dict[str, Any]:
    after = _param("after", "query", {"type": "integer", "minimum": 0})
    stream = _page(
        "The live feed as server-sent events: `callback` (a FeedRow, id = its id), `counts`"
        " when they change, `reset` when the log was emptied. Each stream ends after a bounded"
        " time; the browser reconnects with Last-Event-ID.",
        [after],
    )
    stream["get"]["responses"]["200"] = {
        "description": "The event stream.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    static = _page("The dashboard's script and stylesheet.")
    static["get"]["parameters"].insert(0, _param("filename", "path", {"type": "string"}, True))
    static["get"]["responses"]["200"] = {
        "description": "The file.",
        "content": {
            "text/javascript": {"schema": {"type": "string"}},
            "text/css": {"schema": {"type": "string"}},
        },
    }
    return {
        "/": _page("The dashboard: counts and the live feed of callbacks."),
        "/dashboard/stream": stream,
        "/dashboard/callbacks": _page("The callback log, a page at a time.", [after]),
        "/dashboard/callbacks/{callback_id}": _page(
            "One callback: its body, reply, events with their meta decoded, system events.",
            [_param("callback_id", "path", {"type": "integer", "minimum": 1}, True)],
        ),
        "/dashboard/profiles": _page(
            "A profile by address: its state and history.",
            [_param("email", "query", {"type": "string"})],
        ),
        "/dashboard/events": _page(
            "System events, filtered.",
            [
                _param("name", "query", {"type": "string"}),
                _param("type", "query", {"type": "string"}),
                _param("label", "query", {"type": "string"}),
                _param("message_id", "query", {"type": "integer"}),
                {**_param("after", "query", {"type": "string"}), "description": "Opaque."},
            ],
        ),
        "/dashboard/reports": _page(
            "A campaign's or a label's report: outcome chart and timeline of arrivals.",
            [
                _param("message_id", "query", {"type": "integer"}),
                _param("label", "query", {"type": "string"}),
            ],
        ),
        "/dashboard/unattributed": _page("Events whose meta was never sent.", [after]),
        "/dashboard/static/{filename}": static,
    }


def _reset_item() -> dict[str, Any]:
    return {
        "delete": {
            "summary": "Empty the log and everything derived from it (between tests).",
            "security": [{}, {"readToken": []}, {"dashboardCookie": []}],
            "responses": {
                "200": _json("Reset", "Emptied; the counts are all zero."),
                "401": _error("A token is set and the request does not present it."),
                "403": _error(
                    "Sent by another site's page (Sec-Fetch-Site cross-site or a foreign"
                    " Origin), or the receiver serves public reads without a token."
                ),
                "500": _error("Server error, such as a database fault."),
            },
        }
    }


def _preferences_item() -> dict[str, Any]:
    meta = _param("meta", "query", _ref("Callback_meta"), True)
    signature = _param(
        "sig",
        "query",
        {
            "type": "string",
            "maxLength": MAX_SIGNATURE_LENGTH,
            "description": "`<key id>.<unpadded URL-safe base64 HMAC-SHA256 of meta>`, written by"
            " the sender with one of the receiver's link keys.",
        },
        True,
    )
    html = {"text/html": {"schema": {"type": "string"}}}
    invalid = {
        "description": "The meta is missing or malformed, or its recipient is not an address a"
        " v2 callback event can carry.",
        "content": html,
    }
    refused = {
        "description": "The link is unsigned or its signature does not match (or the receiver"
        " has no link key), or, for a POST, a browser posted it from another site. Nothing is"
        " stored.",
        "content": html,
    }
    one_click = {
        "type": "object",
        "properties": {"List-Unsubscribe": {"const": "One-Click"}},
        "required": ["List-Unsubscribe"],
    }
    return {
        "parameters": [meta, signature],
        "get": {
            "summary": "The preference center page for the recipient of `meta`.",
            "responses": {
                "200": {"description": "The page.", "content": html},
                "400": invalid,
                "403": refused,
            },
        },
        "post": {
            "summary": "Unsubscribe the recipient of `meta` (RFC 8058 one-click).",
            "requestBody": {
                "required": True,
                "description": "The RFC 8058 one-click pair, form-encoded; any other body is a"
                " 400 and nothing is stored.",
                "content": {
                    media: {"schema": one_click}
                    for media in ("multipart/form-data", "application/x-www-form-urlencoded")
                },
            },
            "responses": {
                "200": {"description": "Unsubscribed; the page.", "content": html},
                "400": {
                    **invalid,
                    "description": f"{invalid['description']} Or the body is not"
                    " `List-Unsubscribe=One-Click`, form-encoded; nothing is stored.",
                },
                "403": refused,
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    schemas = {**_SCHEMAS, **_embedded_payload_schemas()}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "bounceback reference callback receiver",
            "version": "0.1.0",
            "description": "The platform's side of the v2 SMTP callback protocol.",
        },
        "paths": {
            "/callback": {"post": _callback_operation("Receive a v2 callback (no token set).")},
            "/callback/{token}": {
                "parameters": [_param("token", "path", {"type": "string"}, True)],
                "post": _callback_operation("Receive a v2 callback (token set)."),
            },
            "/healthz": _get("Liveness and row counts.", "Health", guarded=False),
            "/api/profiles/{email}": _get(
                "A profile's subscription state and its history.",
                "Profile",
                params=[_param("email", "path", {"type": "string"}, True)],
                missing=True,
            ),
            "/api/events": _get(
                "System events, oldest first, a page at a time; follow `next`.",
                "EventList",
                params=[
                    {
                        **_param("type", "query", {"type": "string"}),
                        "description": "The causing event type (hard_bounce, send_failed, ...).",
                    },
                    {
                        **_param("name", "query", {"type": "string"}),
                        "description": "The system event's name (Notification Failed, ...).",
                    },
                    _param("label", "query", {"type": "string"}),
                    _param("message_id", "query", {"type": "integer"}),
                    *_EVENT_PAGING,
                ],
                paged=True,
            ),
            "/api/callbacks": _get(
                "The log of processed callbacks, a page at a time; follow `next`. Each item is"
                " the callback's summary (status, the reply's counts and error, the body's"
                " size); `body=true` adds the body as received and the stored reply, and a"
                f" page then also ends once its bodies pass {CALLBACK_PAGE_BYTES} bytes (one at"
                " least). One callback's body is also in `/api/callbacks/{callback_id}`.",
                "CallbackList",
                params=[
                    {
                        **_param("body", "query", {"enum": ["true", "false", "1", "0"]}),
                        "description": "Include each callback's body and stored reply.",
                    },
                    *_PAGING,
                ],
                paged=True,
            ),
            "/api/callbacks/{callback_id}": _get(
                "One logged callback with each accepted event: its meta decoded, whether it was"
                " a duplicate or unattributed, and the system events it raised.",
                "CallbackDetail",
                params=[_param("callback_id", "path", {"type": "integer", "minimum": 1}, True)],
                missing=True,
                bad_query=True,
            ),
            "/api/feed": _get(
                "The raw log without bodies (status, counts, reply error), as the dashboard's"
                " live feed shows it, a page at a time; follow `next`.",
                "FeedList",
                params=_PAGING,
                paged=True,
            ),
            "/api/timeline": _get(
                f"First-seen events of a campaign or label by arrival, in {TIMELINE_BUCKETS}"
                " equal buckets from the first arrival to the last.",
                "Timeline",
                params=[
                    _param("message_id", "query", {"type": "integer"}),
                    _param("label", "query", {"type": "string"}),
                ],
                bad_query=True,
            ),
            "/api/state": _reset_item(),
            "/api/campaigns/{message_id}": _get(
                "Campaign report for one message id.",
                "CampaignReport",
                params=[_param("message_id", "path", {"type": "integer"}, True)],
                missing=True,
            ),
            "/api/labels/{label}": _get(
                "Campaign report across every message of a label.",
                "LabelReport",
                params=[_param("label", "path", {"type": "string"}, True)],
                missing=True,
            ),
            "/api/sent": _get(
                "Messages the sender recorded as sent, a page at a time; follow `next`.",
                "SentList",
                params=_PAGING,
                paged=True,
            ),
            "/api/unattributed": _get(
                "Callback events whose meta the sender never recorded as sent, a page at a time"
                " (a page may be short, even empty, and still have a `next`).",
                "Unattributed",
                params=_PAGING,
                paged=True,
            ),
            "/preferences": _preferences_item(),
            **_dashboard_paths(),
            "/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": schemas, "securitySchemes": _SECURITY},
        "tags": [{"name": "dashboard", "description": "HTML pages for people (docs/receiver.md)."}],
    }
