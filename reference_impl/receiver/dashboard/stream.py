"""The live feed's server-sent events: new log rows as they arrive, over a bounded stream.

A stream holds one server thread while it is open (waitress and gunicorn's gthread workers serve
a request per thread), so it must neither last for ever nor take every thread from the callbacks
it reports on. Each stream therefore ends after `seconds` and the browser's EventSource
reconnects `RETRY_MS` later with `Last-Event-ID`, resuming exactly where it stopped; and at most
`slots` streams are held at once (the CLI gives half of `--threads`). A stream that finds every
slot taken answers what is new at once and ends, so a crowd of open dashboards degrades to
polling instead of starving the callback endpoint.

The formatting is pure (`message`); `events` is the loop, reading through the callables it is
given (the same `feed_page` and counts the read API answers with).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

DEFAULT_STREAM_SECONDS = 15.0
"""How long one stream lasts before the browser reconnects."""
RETRY_MS = 1000
"""How long the browser waits before it reconnects once a stream ended."""
POLL_SECONDS = 0.5
"""How often a stream looks for new rows."""
KEEPALIVE = ": keepalive\n\n"

FeedPage = Callable[[int], tuple[list[dict[str, Any]], int | None]]


def slots_for(threads: int) -> int:
    """Streams held at once on a server of `threads` threads: half of them, so the callbacks
    always keep the other half (none with one thread: every stream then answers and ends)."""
    return threads // 2


def message(event: str, data: Any, event_id: int | None = None) -> str:
    """One server-sent event; the data is one line of JSON, so it needs no escaping."""
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


def resume_cursor(last_event_id: str | None, after: int | None) -> int:
    """Where a stream starts: the id of the last row the browser saw (a reconnect), else the
    page's `after`. A malformed `Last-Event-ID` is ignored, not an error: the browser sent it."""
    if last_event_id is not None and last_event_id.isascii() and last_event_id.isdigit():
        return int(last_event_id)
    return after or 0


def events(
    feed_page: FeedPage,
    counts: Callable[[], dict[str, int]],
    latest_id: Callable[[], int],
    after: int,
    slots: threading.Semaphore,
    seconds: float,
) -> Iterator[str]:
    """Rows past `after` as `callback` events (id = the row's id), the store's counts as `counts`
    whenever they change, and `reset` (then the end) once the log was emptied under it."""
    held = slots.acquire(blocking=False)
    try:
        yield f"retry: {RETRY_MS}\n\n"
        deadline = time.monotonic() + (seconds if held else 0.0)
        shown: dict[str, int] | None = None
        while True:
            items, _ = feed_page(after)
            for item in items:
                after = item["id"]
                yield message("callback", item, after)
            now = counts()
            if latest_id() < after or (shown and now["callbacks"] < shown["callbacks"]):
                yield message("reset", now)
                return
            if now != shown:
                shown = now
                yield message("counts", now)
            if time.monotonic() >= deadline:
                return
            if not items:
                time.sleep(POLL_SECONDS)
                # A comment line: the browser ignores it, and writing it notices a closed tab
                # now rather than at the deadline, freeing the thread and the slot.
                yield KEEPALIVE
    finally:
        if held:
            slots.release()
