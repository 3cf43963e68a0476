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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from reference_impl.protocol.payload import read_batch
from reference_impl.receiver.store import (
    _CAMPAIGN_ARM,
    _EVENT_ARM,
    FAILURE_ARM,
    RESET_TABLES,
    EventCursor,
    RawCallback,
    SQLiteStore,
    Store,
    system_event_item,
)
from reference_impl.receiver.store_postgres import PostgresStore, event_page_queries
from tests.postgres import Cluster
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


def postgres_view_order(store: PostgresStore, where: str, args: list[Any]) -> list[dict]:
    """The same reference on PostgreSQL: its view, sorted whole (its read before issue 13)."""
    with store._pool.connection() as db, db.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            "SELECT * FROM system_events WHERE true"
            f"{where.replace('?', '%s')} ORDER BY created_at, abs(id), id",
            args,
        ).fetchall()
    return [system_event_item(row) for row in rows]


def walk(store: Store, size: int, type: str | None, message_id: int | None, **names: Any) -> list:
    found: list[dict] = []
    after = None
    while True:
        page = store.event_page(type, message_id, after, size, **names)
        found += page
        if len(page) < size:
            return found
        after = EventCursor.parse(EventCursor.of(page[-1]).text)


FILTERS: list[tuple[dict[str, Any], str, list[Any]]] = [
    ({}, "", []),
    *(({"type": t}, " AND cause = ?", [t]) for t in [*TYPES, "send_failed"]),
    *(({"message_id": m}, " AND message_id = ?", [m]) for m in (1, 2)),
    *(({"name": n}, " AND name = ?", [n]) for n in ("Notification Failed", "Channel Unsubscribed")),
    *(({"label": n}, " AND label = ?", [n]) for n in ("spring", "autumn")),
    (
        {"type": "spam", "message_id": 1, "label": "spring"},
        " AND cause = ? AND message_id = ? AND label = ?",
        ["spam", 1, "spring"],
    ),
]
"""Each filter `/api/events` takes, as `event_page`'s arguments and as a WHERE on the view."""


def record_and_compare(
    store: Store,
    view: Callable[[Any, str, list[Any]], list[dict]],
    operations: list[tuple],
    size: int,
) -> None:
    """Walking every filter's pages, and reading it whole, gives the view's rows in its order."""
    now = time.time()
    for op in operations:
        if op[0] == "callback":
            payload = body(*op[2])
            raw = RawCallback(payload, "127.0.0.1", None, now + op[1])
            store.record_callback(raw, read_batch(payload))
        else:
            store.record_send_failure(op[1], meta_for(op[1], op[2]), "SMTP timeout", "x")
    store.projection.catch_up()
    for arguments, where, args in FILTERS:
        expected = view(store, where, args)
        type, message_id = arguments.get("type"), arguments.get("message_id")
        names = {k: v for k, v in arguments.items() if k in ("name", "label")}
        assert walk(store, size, type, message_id, **names) == expected, arguments
        assert store.event_page(type, message_id, None, -1, **names) == expected, arguments


@settings(max_examples=40, deadline=None)
@given(st.lists(operation, max_size=14), st.sampled_from([1, 2, 3, 7, 1000]))
def test_pages_walk_the_view_in_its_order_with_every_filter(
    operations: list[tuple], size: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(Path(folder) / "rx.db")
        try:
            record_and_compare(store, view_order, operations, size)
        finally:
            store.close()


@pytest.fixture(scope="module")
def postgres_store(postgres_cluster: Cluster) -> Iterator[PostgresStore]:
    """One PostgreSQL store for the property, emptied before each example."""
    store = PostgresStore(postgres_cluster.create_database("pages"))
    yield store
    store.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(operation, max_size=14), st.sampled_from([1, 2, 3, 7, 1000]))
def test_postgresql_pages_walk_the_view_in_its_order_with_every_filter(
    postgres_store: PostgresStore, operations: list[tuple], size: int
) -> None:
    """Issue 13 on PostgreSQL: its pages, read by index half by half and merged, are the rows
    of its view sorted whole, as they were before, with every filter and page size."""
    postgres_store.reset()
    record_and_compare(postgres_store, postgres_view_order, operations, size)


def test_an_event_page_is_read_by_index_not_by_sorting_every_event(tmp_path: Path) -> None:
    """Raised events are read by `callbacks_received` then `events_callback`, and sorted only
    within a callback ("RIGHT PART OF ORDER BY"); failures by `send_failures_failed`."""
    store = SQLiteStore(tmp_path / "rx.db")
    cursor = EventCursor(1.0, 5)
    try:
        db = store._connection()
        for arm, index in (
            (_EVENT_ARM, "callbacks_received"),
            (FAILURE_ARM, "send_failures_failed"),
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
        assert walk(store, 2, None, 1) == expected
    finally:
        store.close()


_FILL = """
INSERT INTO callbacks (received_at, body, status, response, projected, derived)
    SELECT 1000 + g, '\\x00', 200, '{}', true, '{}' FROM generate_series(1, 1000) AS g;
INSERT INTO events (callback_id, position, grp, type, email, meta, profile, message_id, label,
                    variant, description, duplicate)
    SELECT c.id, p, 'failed', (ARRAY['hard_bounce', 'spam', 'soft_bounce'])[1 + (c.id + p) % 3],
           'u@x.com', 'm' || c.id || '_' || p, 'u@x.com', c.id % 50, 'spring', 1, NULL, false
    FROM callbacks AS c, generate_series(1, 100) AS p;
INSERT INTO send_failures (recipient, profile, meta, message_id, label, variant, error, detail,
                           failed_at)
    SELECT 'u@x.com', 'u@x.com', 'f' || g, g % 50, 'spring', 1, 'SMTP', 'x', 1000 + g
    FROM generate_series(1, 1000) AS g;
"""
"""100,000 raised events in 1,000 callbacks and 1,000 send failures, written straight into the
tables (the plan depends on the sizes the planner sees, not on how the rows came). Planned before
and after ANALYZE: a receiver's statistics lag its tables until autovacuum catches up."""


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def test_a_postgresql_event_page_reads_by_index_and_never_sorts_the_view(
    postgres_url: str,
) -> None:
    """Issue 13 on PostgreSQL: every page sorted the whole `system_events` view (a Seq Scan of
    every event and a Sort of them all, 90 ms at 100,000 events). Now the page's statements walk
    `callbacks_received` then `events_callback`, and `send_failures_failed`, sorting at most
    the events of a callback (Incremental Sort), with and without filters and a cursor, also on
    statistics that lag the tables (a join of callbacks and events was then planned as a scan of
    either); a campaign's page reads its rows by an index too (`raises`, a few rows, may be read
    whole)."""
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(_FILL)
        cursor = EventCursor(1500.0, 5000)
        pages: list[dict[str, Any]] = [
            {},
            {"after": cursor},
            {"type": "spam", "after": cursor},
            {"name": "Notification Failed"},
            {"label": "spring", "after": cursor},
            {"message_id": 7},
        ]
        # Before ANALYZE only the raised events' statement is checked: it is the one a lagging
        # estimate planned as a scan of every event; failures are read whole until analysed.
        for analyzed, arguments in [*((False, p) for p in pages), *((True, p) for p in pages)]:
            if analyzed and arguments is pages[0]:
                db.execute("ANALYZE")
            queries = event_page_queries(
                arguments.get("type"),
                arguments.get("message_id"),
                arguments.get("after"),
                100,
                arguments.get("name"),
                arguments.get("label"),
            )
            for sql, args in queries if analyzed else queries[:1]:
                explained = db.execute(f"EXPLAIN (FORMAT JSON) {sql}", args).fetchone()
                nodes = list(plan_nodes(explained[0][0]["Plan"]))
                kinds = {node["Node Type"] for node in nodes}
                scanned = {n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"}
                assert not scanned & set(RESET_TABLES), (arguments, sql, nodes)
                # An arm the filter rules out reads no table (it sorts nothing).
                tables = {n.get("Relation Name") for n in nodes} - {None}
                if "message_id" not in arguments and tables:
                    assert "Sort" not in kinds, (arguments, sql, nodes)
                    indexes = {node.get("Index Name") for node in nodes}
                    assert indexes & {"callbacks_received", "send_failures_failed"}, nodes
