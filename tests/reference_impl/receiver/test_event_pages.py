"""Issue 13: the SQLite store pages system events by index, in exactly the view's order.

`SQLiteStore.event_page` reads raised events and send failures separately, each in time order by
an index, and merges them; before, every page sorted the whole `system_events` view. Walking the
pages with any filter and page size must give the rows of the view's own
`ORDER BY created_at, abs(id), id`, once each, ties in time included.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.protocol.payload import read_batch
from reference_impl.receiver.store import (
    _CAMPAIGN_ARM,
    _EVENT_ARM,
    _FAILURE_ARM,
    EventCursor,
    RawCallback,
    SQLiteStore,
    system_event_item,
)
from tests.reference_impl.receiver.logged import body, meta_for

TYPES = ["hard_bounce", "soft_bounce", "spam", "unsubscribed"]
EMAILS = [f"u{n}@example.com" for n in range(6)]

operation = st.one_of(
    st.tuples(
        st.just("callback"),
        st.integers(-2, 2),  # received_at around now: ties between callbacks and with failures
        st.lists(
            st.tuples(st.sampled_from(TYPES), st.sampled_from(EMAILS)), min_size=1, max_size=4
        ),
    ),
    st.tuples(st.just("failure"), st.sampled_from(EMAILS), st.integers(1, 3)),
)


def view_order(store: SQLiteStore, where: str, args: list[Any]) -> list[dict[str, Any]]:
    """The reference: the view, filtered, in its documented order (the read before issue 13)."""
    rows = store._connection().execute(
        f"SELECT * FROM system_events WHERE 1 = 1{where} ORDER BY created_at, abs(id), id", args
    )
    return [system_event_item(row) for row in rows]


def walk(store: SQLiteStore, type: str | None, message_id: int | None, size: int) -> list[dict]:
    found: list[dict] = []
    after = None
    while True:
        page = store.event_page(type, message_id, after, size)
        found += page
        if len(page) < size:
            return found
        after = EventCursor.parse(EventCursor.of(page[-1]).text)


@settings(max_examples=40, deadline=None)
@given(st.lists(operation, max_size=14), st.sampled_from([1, 2, 3, 7, 1000]))
def test_pages_walk_the_view_in_its_order_with_every_filter(
    operations: list[tuple], size: int
) -> None:
    now = time.time()
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(Path(folder) / "rx.db")
        try:
            for op in operations:
                if op[0] == "callback":
                    payload = body(*op[2])
                    raw = RawCallback(payload, "127.0.0.1", None, now + op[1])
                    store.record_callback(raw, read_batch(payload))
                else:
                    meta = meta_for(op[1], op[2])
                    store.record_send_failure(op[1], meta, "SMTP timeout", "x")
            store.projection.catch_up()
            filters = [(None, None, "", [])]
            filters += [(t, None, " AND cause = ?", [t]) for t in [*TYPES, "send_failed"]]
            filters += [
                (None, 1, " AND message_id = ?", [1]),
                (None, 2, " AND message_id = ?", [2]),
            ]
            for type, message_id, where, args in filters:
                expected = view_order(store, where, args)
                assert walk(store, type, message_id, size) == expected
                assert store.event_page(type, message_id, None, -1) == expected
        finally:
            store.close()


def test_an_event_page_is_read_by_index_not_by_sorting_every_event(tmp_path: Path) -> None:
    """Raised events are read by `callbacks_received` then `events_callback`, and sorted only
    within a callback ("RIGHT PART OF ORDER BY"); failures by `send_failures_failed`."""
    store = SQLiteStore(tmp_path / "rx.db")
    cursor = EventCursor(1.0, 5)
    try:
        db = store._connection()
        for arm, index in (
            (_EVENT_ARM, "callbacks_received"),
            (_FAILURE_ARM, "send_failures_failed"),
        ):
            for type, after in ((None, None), ("spam", cursor)):
                sql, args = arm.page(type, None, after)
                plan = " | ".join(
                    row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql} LIMIT 100", args)
                )
                assert index in plan, plan
                assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
    finally:
        store.close()


def test_a_campaigns_event_page_reads_its_index_in_order_without_sorting(tmp_path: Path) -> None:
    """Issue 13: `/api/events?message_id=` stays flat as the store grows. Before, the campaign's
    events were found by `events_message` (message_id alone) and every one of them sorted for
    each page (38 ms at a million events); `events_message_received` holds them in the view's
    order, so a page reads `limit` rows and sorts none, not even within a callback."""
    store = SQLiteStore(tmp_path / "rx.db")
    try:
        db = store._connection()
        for type, after in ((None, None), ("spam", EventCursor(1.0, 5))):
            for label in (None, "spring"):
                sql, args = _CAMPAIGN_ARM.page(type, 7, after, label=label)
                plan = " | ".join(
                    row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql} LIMIT 100", args)
                )
                assert "USING INDEX events_message_received (message_id=?" in plan, plan
                assert "TEMP B-TREE" not in plan, plan
    finally:
        store.close()


def test_a_store_from_before_the_campaign_index_gets_each_events_arrival_time(
    tmp_path: Path,
) -> None:
    """A file written before event rows kept their callback's `received_at` is upgraded when
    opened: the column is copied from the log, and the campaign's pages are the view's order."""
    path = tmp_path / "older.sqlite3"
    store = SQLiteStore(path)
    for at, events in ((30.0, [("spam", "a@x.com")]), (10.0, [("hard_bounce", "b@x.com")])):
        payload = body(*events)
        store.record_callback(RawCallback(payload, None, None, at), read_batch(payload))
    store.projection.catch_up()
    store.close()
    older = sqlite3.connect(path, isolation_level=None)
    older.executescript(
        "DROP INDEX events_message_received; ALTER TABLE events DROP COLUMN received_at;"
        " CREATE INDEX events_message ON events(message_id);"
    )
    older.close()
    store = SQLiteStore(path)
    try:
        db = store._connection()
        arrivals = db.execute("SELECT received_at FROM events ORDER BY id").fetchall()
        assert [tuple(row) for row in arrivals] == [(30.0,), (10.0,)]
        indexes = {row[1] for row in db.execute("PRAGMA index_list(events)")}
        assert "events_message_received" in indexes and "events_message" not in indexes
        expected = view_order(store, " AND message_id = ?", [1])
        assert [e["created_at"] for e in expected] == [10.0, 10.0, 30.0]
        assert walk(store, None, 1, 2) == expected
    finally:
        store.close()
