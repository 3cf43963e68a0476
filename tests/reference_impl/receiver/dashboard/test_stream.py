"""The live feed's stream loop and its messages (`dashboard/stream.py`), without a server: the
log is a list, read through the same `(after) -> (rows, next)` shape `feed_page` has."""

from __future__ import annotations

import json
import threading
from typing import Any

from reference_impl.receiver.dashboard.stream import (
    RETRY_MS,
    events,
    message,
    resume_cursor,
    slots_for,
)


def parse(chunks: list[str]) -> list[tuple[str, Any, str | None]]:
    """The stream as a browser reads it: (event, data, id) for every event, comments skipped."""
    seen = []
    for block in "".join(chunks).split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            seen.append((fields["event"], json.loads(fields["data"]), fields.get("id")))
    return seen


class Log:
    """A log to stream from: rows with ids, and the counts a store would report."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def page(self, after: int) -> tuple[list[dict[str, Any]], int | None]:
        return [{"id": i} for i in self.ids if i > after][:2], None

    def counts(self) -> dict[str, int]:
        return {"callbacks": len(self.ids)}

    def latest(self) -> int:
        return max(self.ids, default=0)


def test_a_message_is_one_event_with_one_line_of_json() -> None:
    text = message("callback", {"error": "a\nb"}, 7)
    assert text == 'event: callback\nid: 7\ndata: {"error":"a\\nb"}\n\n'


def test_a_reconnect_resumes_after_the_last_event_id() -> None:
    assert resume_cursor("41", 3) == 41
    assert resume_cursor(None, 3) == 3
    assert resume_cursor("4x", 3) == 3, "a malformed Last-Event-ID falls back to the page's"
    assert resume_cursor("٣", None) == 0, "other scripts' digits are not an id"


def test_streams_take_half_the_threads_so_callbacks_keep_the_rest() -> None:
    assert [slots_for(n) for n in (1, 2, 4, 5)] == [0, 1, 2, 2]


def test_a_stream_sends_every_new_row_once_in_order_and_ends_at_its_deadline() -> None:
    """Pages are read until the log is caught up; then the stream waits, and ends at its
    deadline (the test ends, so the loop is bounded)."""
    log = Log([1, 2, 3, 4, 5])
    chunks = list(events(log.page, log.counts, log.latest, 1, threading.Semaphore(1), 0.6))
    assert chunks[0] == f"retry: {RETRY_MS}\n\n"
    seen = parse(chunks)
    assert [(e, d["id"], i) for e, d, i in seen if e == "callback"] == [
        ("callback", 2, "2"),
        ("callback", 3, "3"),
        ("callback", 4, "4"),
        ("callback", 5, "5"),
    ]
    assert ("counts", {"callbacks": 5}, None) in seen


def test_a_stream_gives_its_slot_back_when_it_ends() -> None:
    slots = threading.Semaphore(1)
    log = Log([1])
    list(events(log.page, log.counts, log.latest, 0, slots, 0.0))
    assert slots.acquire(blocking=False)


def test_with_every_slot_taken_a_stream_answers_what_is_new_and_ends_at_once() -> None:
    """A crowd of dashboards must not take every server thread from the callbacks: past the
    slots, a stream does not wait for its deadline (a long one here) but ends after one read."""
    slots = threading.Semaphore(0)
    log = Log([1, 2])
    chunks = list(events(log.page, log.counts, log.latest, 0, slots, 3600.0))
    assert [d["id"] for e, d, _ in parse(chunks) if e == "callback"] == [1, 2]


def test_a_log_emptied_under_the_stream_is_announced_as_a_reset() -> None:
    log = Log([1, 2, 3])
    chunks = list(events(log.page, log.counts, log.latest, 9, threading.Semaphore(1), 3600.0))
    assert [e for e, _, _ in parse(chunks)] == ["reset"]
