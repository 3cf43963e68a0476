"""The dashboard's routes: HTML pages over the store, the live-feed stream and the sign-in.

Every page reads what the read API (`read_api.py`) answers, through the same functions, so the
page and `/api/...` never disagree. With a read token set (and no `--public-read`), a page asks
for it: `?token=TOKEN` once (or the sign-in form, which sends the same) sets an HttpOnly,
SameSite=Strict cookie and redirects to the URL without the token; a bearer token works too.
Pages carry a strict Content-Security-Policy (scripts and styles from this receiver only, no
inline script, no framing).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    redirect,
    render_template,
    request,
    stream_with_context,
)

from reference_impl.protocol import effects
from reference_impl.receiver.access import COOKIE_NAME, ReadAccess, cookie_value
from reference_impl.receiver.dashboard import charts, stream
from reference_impl.receiver.preferences import FRAME_HEADERS
from reference_impl.receiver.read_api import feed_page
from reference_impl.receiver.responses import INT64_MAX, QueryError, checked_int, query_int
from reference_impl.receiver.store import PAGE_SIZE, EventCursor, Store

HTML_TYPE = "text/html"
FEED_BACKLOG = 50
"""The live feed opens on the callbacks logged after the newest one but this many."""
STREAM_PAGE = 100
"""Rows a stream sends per read of the log."""
SECURITY_HEADERS = {
    **FRAME_HEADERS,
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self';"
    " img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none';"
    " frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
SIGN_IN = "This receiver's dashboard asks for its read token."
WRONG_TOKEN = "That token is not this receiver's read token."
NO_CALLBACK = "No callback {} in the log."
NO_REPORT = "Nothing recorded under that key."
SYSTEM_EVENT_NAMES = (effects.NOTIFICATION_FAILED, effects.CHANNEL_UNSUBSCRIBED)
EVENT_TYPES = (*effects.RAISES, effects.SEND_FAILED)


def _page(template: str, status: int = 200, **context: Any) -> Response:
    return Response(render_template(f"dashboard/{template}", **context), status, mimetype=HTML_TYPE)


def _notice(title: str, text: str, status: int) -> Response:
    return _page("notice.html", status, title=title, text=text)


def dashboard_blueprint(
    store: Store,
    access: ReadAccess,
    stream_slots: int = 2,
    stream_seconds: float = stream.DEFAULT_STREAM_SECONDS,
) -> Blueprint:
    """The dashboard over `store`; reads ask for the token of `access` when it guards them."""
    blueprint = Blueprint(
        "dashboard",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/dashboard/static",
    )
    slots = threading.BoundedSemaphore(stream_slots) if stream_slots else threading.Semaphore(0)

    @blueprint.before_request
    def sign_in() -> Response | None:
        given = request.args.get("token")
        if given is not None:
            if access.token is not None and not access.token_matches(given):
                return _page("sign_in.html", 401, text=WRONG_TOKEN)
            query = urlencode([(k, v) for k, v in request.args.items(multi=True) if k != "token"])
            response = redirect(request.path + (f"?{query}" if query else ""), 303)
            if access.token is not None:
                response.set_cookie(
                    COOKIE_NAME,
                    cookie_value(access.token),
                    httponly=True,
                    samesite="Strict",
                    secure=request.is_secure,
                )
            return response
        if access.may_read(request.headers, request.cookies):
            return None
        if request.endpoint == "dashboard.static":
            return None
        return _page("sign_in.html", 401, text=SIGN_IN)

    @blueprint.after_request
    def secured(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    @blueprint.errorhandler(QueryError)
    def bad_query(error: QueryError) -> Response:
        return _notice("Bad request", str(error), 400)

    @blueprint.get("/")
    def overview() -> Response:
        start = max(0, store.latest_callback_id() - FEED_BACKLOG)
        resettable = not (access.token is None and access.public_read)
        return _page("overview.html", counts=store.counts(), after=start, resettable=resettable)

    @blueprint.get("/dashboard/stream")
    def live() -> Response:
        after = stream.resume_cursor(
            request.headers.get("Last-Event-ID"), query_int("after", 0, INT64_MAX)
        )
        body = stream.events(
            lambda cursor: feed_page(store, cursor, STREAM_PAGE),
            store.counts,
            store.latest_callback_id,
            after,
            slots,
            stream_seconds,
        )
        response = Response(stream_with_context(body), mimetype="text/event-stream")
        response.headers["X-Accel-Buffering"] = "no"
        return response

    @blueprint.get("/dashboard/callbacks")
    def callbacks() -> Response:
        after = query_int("after", 0, INT64_MAX) or 0
        items, cursor = feed_page(store, after, PAGE_SIZE)
        return _page("callbacks.html", items=items, next=cursor)

    @blueprint.get("/dashboard/callbacks/<callback_id>")
    def callback(callback_id: str) -> Response:
        number = checked_int("callback id", callback_id, 1, INT64_MAX)
        found = store.callback(number)
        if found is None:
            return _notice("No such callback", NO_CALLBACK.format(number), 404)
        return _page("callback.html", callback=found)

    @blueprint.get("/dashboard/profiles")
    def profiles() -> Response:
        email = (request.args.get("email") or "").strip()
        found = store.profile(email) if email else None
        return _page("profile.html", email=email, profile=found)

    @blueprint.get("/dashboard/events")
    def events() -> Response:
        filters = {
            "name": request.args.get("name") or None,
            "type": request.args.get("type") or None,
            "label": request.args.get("label") or None,
            "message_id": query_int("message_id"),
        }
        after = EventCursor.parse(request.args.get("after") or None)
        page = store.event_page(
            filters["type"],
            filters["message_id"],
            after,
            PAGE_SIZE,
            name=filters["name"],
            label=filters["label"],
        )
        cursor = EventCursor.of(page[-1]).text if len(page) == PAGE_SIZE else None
        shown = {k: v for k, v in filters.items() if v is not None}
        return _page(
            "events.html",
            events=page,
            filters=shown,
            next_query=urlencode({**shown, "after": cursor}) if cursor else None,
            names=SYSTEM_EVENT_NAMES,
            types=EVENT_TYPES,
        )

    @blueprint.get("/dashboard/reports")
    def reports() -> Response:
        message_id = query_int("message_id")
        label = request.args.get("label") or None
        if message_id is not None:
            report = store.campaign(message_id)
            title = f"Campaign {message_id}"
        elif label is not None:
            report = store.label_report(label)
            title = f"Label {label}"
        else:
            return _page("reports.html", report=None, title="Reports")
        if report is None:
            return _notice(title, NO_REPORT, 404)
        timeline = store.timeline(message_id, None if message_id is not None else label)
        return _page(
            "reports.html",
            title=title,
            report=report,
            bars=charts.outcome_bars(report["counts"]),
            columns=charts.timeline_columns(timeline),
            timeline=timeline,
        )

    @blueprint.get("/dashboard/unattributed")
    def unattributed() -> Response:
        page = store.unattributed(query_int("after", 0, INT64_MAX) or 0, PAGE_SIZE)
        return _page("unattributed.html", events=page.items, next=page.after)

    @blueprint.app_template_filter("when")
    def when(epoch: float | None) -> str:
        return charts.shown_time(epoch)

    return blueprint
