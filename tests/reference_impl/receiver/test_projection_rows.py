"""The projection gives the rows the protocol states, odd input too.

The oracle below states the rows directly from the protocol's reading: one row per accepted event,
in position order, its meta decoded by `parse_meta`, the profile its meta's email lowered, and
`duplicate = 1` for an event whose (meta, type) an earlier event already carried; a callback's
first-seen rows are stored before its retries.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.protocol import effects
from reference_impl.protocol.meta import INT64_MAX, INT64_MIN, Meta, build_meta, parse_meta
from reference_impl.protocol.payload import read_batch
from reference_impl.receiver.store import RawCallback, SentMessage, SQLiteStore, Store
from reference_impl.receiver.store_postgres import PostgresStore
from tests.postgres import Cluster
from tests.reference_impl.strategies import FAILED_TYPES, mixed_events

_ODD_LOCAL = st.from_regex(r"[A-Za-z0-9|!#$%&'*+/=?^_`{}~.-]{1,12}", fullmatch=True)
_HUGE = st.sampled_from([0, 1, INT64_MAX, INT64_MAX - 1, 10**18, 10**17 + 3])


@st.composite
def odd_events(draw: st.DrawFn) -> dict[str, Any]:
    """Valid events at the edges: pipes and capitals in the meta's email, numbers near 2**63,
    an event email in any script, a description in any script."""
    meta_email = f"{draw(_ODD_LOCAL)}@{draw(st.sampled_from(['Example.COM', 'x.example']))}"
    meta = Meta(
        email=meta_email,
        account_id=draw(_HUGE),
        sent_at=draw(st.sampled_from([0, 1730714617, 253402300799])),
        variant=draw(_HUGE),
        label=draw(st.sampled_from(["wzrk_default", "L", "a-b_c", "~!"])),
        message_id=draw(st.sampled_from([INT64_MIN, INT64_MAX, -1, 0, 17])),
    )
    event: dict[str, Any] = {
        "type": draw(st.sampled_from(FAILED_TYPES)),
        "email": draw(st.sampled_from(["ü@bücher.example", "用户@例子.example", meta_email])),
        "meta": build_meta(meta),
    }
    description = draw(st.none() | st.text(max_size=10).filter(lambda t: t.isprintable()))
    if description is not None:
        event["description"] = description
    return event


any_event = st.one_of(mixed_events().map(lambda pair: pair[0]), odd_events())
bodies = st.lists(st.lists(any_event, max_size=12), min_size=1, max_size=4).flatmap(
    # A batch repeated whole (an ESP's retry) is the commonest duplicate of all.
    lambda batches: st.lists(st.sampled_from(batches), min_size=len(batches), max_size=6)
)


def protocol_rows(payloads: list[bytes]) -> list[tuple[Any, ...]]:
    seen: set[tuple[str, str]] = set()
    rows: list[tuple[Any, ...]] = []
    for callback_id, payload in enumerate(payloads, 1):
        accepted = read_batch(payload).accepted
        first, repeats = [], []
        for position, group, kind, email, meta, description in zip(
            accepted.positions,
            accepted.groups,
            accepted.types,
            accepted.emails,
            accepted.metas,
            accepted.descriptions,
            strict=True,
        ):
            parsed = parse_meta(meta)
            duplicate = (meta, kind) in seen
            seen.add((meta, kind))
            row = (callback_id, position, group, kind, email, meta, parsed.email.lower())
            row += (parsed.message_id, parsed.label, parsed.variant, description, int(duplicate))
            (repeats if duplicate else first).append(row)
        rows += first + repeats
    return rows


Query = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]
"""Runs SQL with `?` parameters on the store's database, outside the store."""


def counted(query: Query) -> dict[str, int]:
    """What `/healthz` reports, counted over whole tables: the oracle for the kept totals."""
    queries = {
        "callbacks": "SELECT count(*) FROM callbacks",
        "events": "SELECT count(*) FROM events",
        "system_events": "SELECT count(*) FROM system_events",
        "profiles": "SELECT count(DISTINCT profile) FROM events WHERE NOT duplicate",
        "sent_messages": "SELECT count(*) FROM sent_messages",
    }
    return {name: query(sql, ())[0][0] for name, sql in queries.items()}


def report(query: Query, column: str, value: object) -> dict[str, Any] | None:
    """A campaign or label report counted over the events and sent messages: the oracle for
    the tallies."""
    counts = dict.fromkeys(effects.REPORT_COUNTERS, 0)
    duplicates = 0
    for kind, duplicate, count in query(
        f"SELECT type, duplicate, count(*) FROM events WHERE {column} = ? GROUP BY type, duplicate",
        (value,),
    ):
        if duplicate:
            duplicates += count
        else:
            counts[kind] = count
    counts[effects.SEND_FAILED] = 0
    sent = query(f"SELECT count(*) FROM sent_messages WHERE {column} = ?", (value,))[0][0]
    if not any(counts.values()) and not duplicates and not sent:
        return None
    return {column: value, "sent": sent, "counts": counts, "duplicates_ignored": duplicates}


_FIRST_SEEN = (
    "sum(CASE WHEN duplicate THEN 0 ELSE 1 END), sum(CASE WHEN duplicate THEN 1 ELSE 0 END)"
)
COUNTERS = {
    "SELECT message_id, label, type, first_seen, duplicates FROM tallies": (
        f"SELECT message_id, label, type, {_FIRST_SEEN} FROM events"
        " GROUP BY message_id, label, type"
    ),
    "SELECT message_id, label, sent FROM sent_tallies": (
        "SELECT message_id, label, count(*) FROM sent_messages GROUP BY message_id, label"
    ),
    "SELECT label, type, first_seen, duplicates FROM label_tallies": (
        f"SELECT label, type, {_FIRST_SEEN} FROM events GROUP BY label, type"
    ),
    "SELECT label, sent FROM label_sent_tallies": (
        "SELECT label, count(*) FROM sent_messages GROUP BY label"
    ),
}
"""Every report counter table, read whole, and the same rows counted over the tables they
count, on either store."""


def check_counter_tables(query: Query) -> None:
    """Every row of every report counter equals its count over the tables, none missing, none
    extra (the rows compared as sorted lists: the stores collate labels differently)."""
    for kept, oracle in COUNTERS.items():
        assert sorted(map(tuple, query(kept, ()))) == sorted(map(tuple, query(oracle, ()))), kept


_STORED = (
    "SELECT callback_id, position, grp, type, email, meta, profile, message_id, label, variant,"
    " description, duplicate FROM events ORDER BY id"
)


def _record_sent(store: Store, payload: bytes) -> None:
    """Record every meta of `payload` as sent (a meta repeated in it, or sent before, is one
    sent message)."""
    metas = read_batch(payload).accepted.metas
    store.record_sent(
        SentMessage(m.email, meta, m.message_id, m.label, m.variant, 0.0)
        for meta, m in zip(metas, map(parse_meta, metas), strict=True)
    )


def _check_against_oracles(
    store: Store, query: Query, payloads: list[bytes], cuts: list[bool], sent: list[bool]
) -> None:
    """Log the payloads, projecting after those `cuts` marks, so a profile or (meta, type) seen
    in an earlier step and one seen earlier in the same step are both exercised; the metas of
    those `sent` marks are recorded as sent first."""
    for index, payload in enumerate(payloads):
        if index < len(sent) and sent[index]:
            _record_sent(store, payload)
        store.record_callback(RawCallback(payload, None, None, 0.0), read_batch(payload))
        if index < len(cuts) and cuts[index]:
            store.projection.catch_up()
    store.projection.catch_up()
    stored = [(*row[:-1], int(row[-1])) for row in query(_STORED, ())]
    assert stored == protocol_rows(payloads)
    assert store.counts() == counted(query)
    check_counter_tables(query)
    for message_id, label in query(
        "SELECT message_id, label FROM events UNION SELECT message_id, label FROM sent_messages",
        (),
    ):
        assert store.campaign(message_id) == report(query, "message_id", message_id)
        assert store.label_report(label) == report(query, "label", label)


def _payloads(batches: list[list[Any]]) -> list[bytes]:
    return [
        json.dumps({"version": "v2", "events": {"failed": events}}).encode() for events in batches
    ]


cuts = st.lists(st.booleans(), max_size=6)


@given(bodies, cuts, cuts)
def test_projected_rows_are_the_rows_the_protocol_states(
    batches: list[list[Any]], cut_after: list[bool], sent: list[bool]
) -> None:
    """Receiver requirement: every accepted event is one row with its meta decoded, a retry is
    kept as a duplicate, nothing else is stored; non-objects, unicode, numbers near 2**63,
    pipes in emails and repeated batches included. The totals and report tallies kept with the
    rows and the sent messages (per message id and label, and per label: issue 13) equal the
    same figures counted over whole tables, row for row."""
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(Path(folder) / "rows.sqlite3")
        try:
            store.projection.stop()
            db = store._connection()
            _check_against_oracles(
                store,
                lambda sql, args: db.execute(sql, args).fetchall(),
                _payloads(batches),
                cut_after,
                sent,
            )
        finally:
            store.close()


@settings(max_examples=25)
@given(batches=bodies, cut_after=cuts, sent=cuts)
def test_postgresql_projects_the_same_rows_and_keeps_the_same_counters(
    postgres_cluster: Cluster, batches: list[list[Any]], cut_after: list[bool], sent: list[bool]
) -> None:
    """The same requirement on PostgreSQL, whose projection is one SQL statement: the same rows,
    and the totals and tallies its step keeps in the same transaction equal the tables' counts.
    (A fresh database per example: fewer examples than on SQLite, each costs a database.)"""
    url = postgres_cluster.create_database("rows")
    store = PostgresStore(url)
    try:
        store.projection.stop()
        with psycopg.connect(url, autocommit=True) as db:
            _check_against_oracles(
                store,
                lambda sql, args: db.execute(sql.replace("?", "%s"), args).fetchall(),
                _payloads(batches),
                cut_after,
                sent,
            )
    finally:
        store.close()
