"""The dashboard at `/`: server-rendered, kept live by server-sent events.

The page is one Jinja2 template; its changing part (`_state.html`) is rendered by the same
template whether it comes with the page, from `GET /dashboard/state`, or as the data of an
`event: state` on `GET /api/stream`. The stream sends a new fragment only when the spool's counts
or the controls moved, and ends after `stream_seconds` (the browser's EventSource reconnects),
so no tab holds a server thread for long. A little plain JS (`static/dashboard.js`) swaps the
fragment in and sends the controls' changes; there is no build step.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, render_template, stream_with_context

from simulator.esp.scenario import OUTCOMES
from simulator.esp.spool import PENDING, SpoolReader
from simulator.esp.web.app import WebConfig

SHOWN = 50
"""Rows of each table the dashboard shows (newest first); the read API pages the rest."""
ATTEMPTS_SHOWN = 500
AUTH_FIELDS = (("authentication_results", "Authentication-Results"), ("auth", "verdicts"))
"""Per-message verification (DKIM, SPF, DMARC) and its label, shown when the spool records it."""
STREAM_RETRY_MS = 1000
KEEPALIVE_SECONDS = 1.0
"""A comment line this often when nothing changed: a closed tab is noticed (the write fails)
and its thread freed within this long, not at the stream's end."""


def clock(at: float | None) -> str:
    """`12:04:05.120` (UTC): the dashboard's times, to the millisecond as retries are short."""
    if at is None:
        return ""
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3]


def timeline(batches: list[dict[str, Any]], now: float) -> tuple[float, float]:
    """The time window the attempts' timeline spans: first batch made to the latest of now and
    every next retry. Never empty, so a position is always a number."""
    starts = [batch["created_at"] for batch in batches]
    ends = [now, *(batch["next_at"] for batch in batches if batch.get("next_at"))]
    first = min(starts, default=now)
    return first, max(max(ends), first + 1.0)


def dashboard_state(reader: SpoolReader, config: WebConfig, now: float) -> dict[str, Any]:
    """Everything `_state.html` shows, read in one go from one connection."""
    messages = reader.messages(SHOWN)
    details = reader.message_details([message["id"] for message in messages])
    for message in messages:
        message.update(details.get(message["id"], {}))
    batches = reader.batches(SHOWN)
    next_at = reader.next_attempts([batch["id"] for batch in batches])
    by_batch: dict[int, list[dict[str, Any]]] = {}
    for attempt in reversed(reader.attempts(ATTEMPTS_SHOWN)):
        by_batch.setdefault(attempt["batch_id"], []).append(attempt)
    for batch in batches:
        batch["next_at"] = next_at.get(batch["id"]) if batch["state"] == PENDING else None
        batch["attempt_list"] = by_batch.get(batch["id"], [])
    start, end = timeline(batches, now)
    panel = config.panel
    return {
        "now": now,
        "stats": reader.stats(),
        "messages": messages,
        "refusals": reader.refusals(SHOWN),
        "batches": batches,
        "dead_letters": reader.dead_letters(SHOWN),
        "window": (start, end),
        "controls": None if panel is None else panel.current.document(),
        "changes": [] if panel is None else panel.changes(),
        "auth_fields": AUTH_FIELDS,
        "outcomes": OUTCOMES,
    }


def _fingerprint(reader: SpoolReader, config: WebConfig) -> tuple[Any, ...]:
    """What moves when the fragment would: the spool's counts and the controls' version."""
    refused = reader.conn.execute("SELECT IFNULL(MAX(id), 0) FROM refusals").fetchone()[0]
    version = 0 if config.panel is None else config.panel.version
    return tuple(sorted(reader.stats().items())), refused, version


def _event(fragment: str) -> str:
    data = "".join(f"data: {line}\n" for line in fragment.splitlines())
    return f"event: state\n{data}\n"


def dashboard_blueprint() -> Blueprint:
    blueprint = Blueprint("dashboard", __name__)

    def render_state(reader: SpoolReader, config: WebConfig) -> str:
        return render_template("_state.html", **dashboard_state(reader, config, time.time()))

    @blueprint.app_template_filter("clock")
    def clock_filter(at: float | None) -> str:
        return clock(at)

    @blueprint.get("/")
    def page() -> str:
        config: WebConfig = current_app.config["ESP"]
        reader = SpoolReader(config.spool_path)
        try:
            state = render_state(reader, config)
        finally:
            reader.close()
        controls = None if config.panel is None else config.panel.current.document()
        return render_template(
            "dashboard.html", state=state, config=config, controls=controls, outcomes=OUTCOMES
        )

    @blueprint.get("/dashboard/state")
    def state() -> str:
        config: WebConfig = current_app.config["ESP"]
        reader = SpoolReader(config.spool_path)
        try:
            return render_state(reader, config)
        finally:
            reader.close()

    @blueprint.get("/api/stream")
    def stream() -> Response:
        config: WebConfig = current_app.config["ESP"]

        def events() -> Iterator[str]:
            reader = SpoolReader(config.spool_path)
            try:
                yield f"retry: {STREAM_RETRY_MS}\n\n"
                deadline = time.monotonic() + config.stream_seconds
                last: tuple[Any, ...] | None = None
                quiet_since = time.monotonic()
                while time.monotonic() < deadline:
                    seen = _fingerprint(reader, config)
                    if seen != last:
                        last, quiet_since = seen, time.monotonic()
                        yield _event(render_state(reader, config))
                    elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                        quiet_since = time.monotonic()
                        yield ": keepalive\n\n"
                    time.sleep(config.stream_poll_seconds)
            finally:
                reader.close()

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return Response(
            stream_with_context(events()), mimetype="text/event-stream", headers=headers
        )

    return blueprint
