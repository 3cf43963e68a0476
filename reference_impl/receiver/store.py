"""Durable storage for the receiver: the callback log and the queries that read it.

`Store` is the small interface the app and the sender depend on, so a server database can follow;
`SQLiteStore` is the default. It runs in WAL mode with `synchronous=FULL`: `record_callback`
returns only after the transaction is on disk, which is what lets the app answer 200 honestly.

The design is event-sourced, and the log is the `callbacks` table: each accepted callback is one
row holding its body verbatim, so committing that row commits every event in it. Everything else
is derived from the log, in log order:

- `events`, one row per accepted event, written by the projection (`projection.py`, after the
  200). A retry is logged (its callback, and an event row with `duplicate = 1`) but never counts
  twice.
- system events and profiles, computed when read from the first-seen events through
  `effects.RAISES` (kept in the `raises` table).

Every read first lets the projection catch up with the log, so none ever sees it half-done.

Reads cost the same at a thousand events as at a million: `/healthz` reads `totals`, a campaign's
report reads its rows of `tallies` and `sent_tallies`, a label's report `label_tallies` and
`label_sent_tallies` (a few rows, however many messages the label has), all kept in the
transactions that write what they count (the log, the projection's step, the sent messages);
lists are read a page at a time by key. A store from an older version gets its counters computed
once, when opened.
"""

from __future__ import annotations

import heapq
import itertools
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reference_impl.errors import PlatformError
from reference_impl.protocol import effects
from reference_impl.protocol.meta import parse_meta
from reference_impl.protocol.payload import Accepted, Batch, PayloadRejected, read_batch
from reference_impl.receiver.projection import Projection, add_to_totals, profile_key
from reference_impl.receiver.responses import QueryError

SCHEMA = """
-- The body comes last: SQLite stores a row's columns in order, and a large body spills into a
-- chain of overflow pages that must be walked to reach any column after it, so a summary of 100
-- callbacks (the feed, /api/callbacks) read about 40 pages per callback of 1000 events.
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    remote_addr TEXT,
    content_type TEXT,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    callback_id INTEGER NOT NULL REFERENCES callbacks(id),
    received_at REAL NOT NULL,
    position INTEGER NOT NULL,
    grp TEXT NOT NULL,
    type TEXT NOT NULL,
    email TEXT NOT NULL,
    meta TEXT NOT NULL,
    profile TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    variant INTEGER NOT NULL,
    description TEXT,
    duplicate INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_first_seen ON events(meta, type) WHERE duplicate = 0;
DROP INDEX IF EXISTS events_profile;
CREATE INDEX IF NOT EXISTS events_profile_first_seen ON events(profile) WHERE duplicate = 0;
DROP INDEX IF EXISTS events_message;
-- A campaign's first-seen events in the order they arrived (its event page reads it, as does its
-- timeline): `received_at` is the callback's, copied by the projection so one index holds both.
CREATE INDEX IF NOT EXISTS events_message_received ON events(message_id, received_at)
    WHERE duplicate = 0;
CREATE TABLE IF NOT EXISTS sent_messages (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    meta TEXT NOT NULL UNIQUE,
    message_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    variant INTEGER NOT NULL,
    sent_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS send_failures (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    profile TEXT NOT NULL,
    meta TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    variant INTEGER NOT NULL,
    error TEXT NOT NULL,
    detail TEXT NOT NULL,
    failed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS projection (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    callback_id INTEGER NOT NULL
);
INSERT OR IGNORE INTO projection VALUES (1, (SELECT coalesce(max(callback_id), 0) FROM events));
CREATE TABLE IF NOT EXISTS raises (
    type TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (type, ordinal)
);
CREATE INDEX IF NOT EXISTS sent_messages_message ON sent_messages(message_id);
CREATE INDEX IF NOT EXISTS send_failures_message ON send_failures(message_id);
CREATE INDEX IF NOT EXISTS send_failures_label ON send_failures(label);
CREATE TABLE IF NOT EXISTS totals (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tallies (
    message_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    type TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    PRIMARY KEY (message_id, label, type)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sent_tallies (
    message_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    sent INTEGER NOT NULL,
    PRIMARY KEY (message_id, label)
) WITHOUT ROWID;
-- A label's report reads these, a few rows whatever its number of messages: summing its rows of
-- `tallies` read one row per message id, and `bounceback send` gives every message its own.
CREATE TABLE IF NOT EXISTS label_tallies (
    label TEXT NOT NULL,
    type TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    PRIMARY KEY (label, type)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS label_sent_tallies (
    label TEXT PRIMARY KEY,
    sent INTEGER NOT NULL
) WITHOUT ROWID;
DROP INDEX IF EXISTS tallies_label;
DROP INDEX IF EXISTS sent_tallies_label;
-- The paged event read walks callbacks in time order and each one's events, and failures in time
-- order (SQLiteStore.event_page); without these it sorted every system event for each page.
CREATE INDEX IF NOT EXISTS callbacks_received ON callbacks(received_at);
CREATE INDEX IF NOT EXISTS events_callback ON events(callback_id);
CREATE INDEX IF NOT EXISTS send_failures_failed ON send_failures(failed_at);
CREATE VIEW IF NOT EXISTS system_events AS
    SELECT e.id * 2 + r.ordinal AS id, r.name, e.profile, e.type AS cause, e.meta, e.message_id,
           e.label, e.variant, e.email, e.description, NULL AS error, c.received_at AS created_at
    FROM events AS e
    JOIN raises AS r ON r.type = e.type
    JOIN callbacks AS c ON c.id = e.callback_id
    WHERE e.duplicate = 0
    UNION ALL
    SELECT -f.id, 'Notification Failed', f.profile, 'send_failed', f.meta, f.message_id, f.label,
           f.variant, f.recipient, f.detail, f.error, f.failed_at
    FROM send_failures AS f;
"""


PAGE_SIZE = 100
"""Items per page of a list read when the client names no `limit`."""
MAX_PAGE_SIZE = 1000
"""The largest `limit` a list read accepts."""
CALLBACK_PAGE_BYTES = 16 * 1024 * 1024
"""A page of raw callbacks also ends once its bodies pass this many bytes (always one at least)."""
SCAN_PER_ITEM = 10
"""A page of unattributed events looks at most this many events per item asked for, so a store
where nearly every event is attributed still answers each page in bounded time."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list read by key: `after` is the cursor of the next page, None at the end."""

    items: list[Any]
    after: int | None


@dataclass(frozen=True, slots=True)
class EventCursor:
    """Where a page of system events ends: they are ordered by (created_at, abs(id), id)."""

    created_at: float
    id: int

    @property
    def text(self) -> str:
        return f"{self.created_at!r}_{self.id}"

    @classmethod
    def of(cls, event: dict[str, Any]) -> EventCursor:
        return cls(float(event["created_at"]), int(event["id"]))

    @classmethod
    def parse(cls, text: str | None) -> EventCursor | None:
        """The `after` of /api/events: a `next` this API returned; anything else is a QueryError."""
        if text is None:
            return None
        match = _CURSOR.fullmatch(text)
        number = int(match.group(2)) if match else 0
        if match is None or not -(2**63) <= number < 2**63:
            raise QueryError(f"query parameter 'after' must be a `next` of this API, got {text!r}")
        return cls(float(match.group(1)), number)


_CURSOR = re.compile(r"([0-9]{1,20}(?:\.[0-9]{1,20})?(?:e[+-]?[0-9]{1,3})?)_(-?[0-9]{1,20})")


class StoreError(PlatformError):
    """The store's file cannot be opened or set up (a missing folder, no permission, not SQLite)."""


@dataclass(frozen=True, slots=True)
class RawCallback:
    """The request as received, kept verbatim for the raw log."""

    body: bytes
    remote_addr: str | None
    content_type: str | None
    received_at: float


@dataclass(frozen=True, slots=True)
class SentMessage:
    recipient: str
    meta: str
    message_id: int
    label: str
    variant: int
    sent_at: float


class Store(Protocol):
    def record_callback(self, raw: RawCallback, batch: Batch) -> int: ...
    def record_sent(self, messages: Iterable[SentMessage]) -> None: ...
    def record_send_failure(self, recipient: str, meta: str, error: str, detail: str) -> None: ...
    def sent_messages(self) -> list[SentMessage]: ...
    def min_message_id(self) -> int | None: ...
    def sent_page(self, after: int, limit: int) -> Page: ...
    def unattributed(self, after: int = 0, limit: int = PAGE_SIZE) -> Page: ...
    def profile(self, email: str) -> dict[str, Any] | None: ...
    def events(self, type: str | None = None, message_id: int | None = None) -> list[dict]: ...
    def event_page(
        self,
        type: str | None,
        message_id: int | None,
        after: EventCursor | None,
        limit: int,
        *,
        name: str | None = None,
        label: str | None = None,
    ) -> list[dict[str, Any]]: ...
    def callbacks(
        self, after_id: int = 0, limit: int = PAGE_SIZE, max_bytes: int | None = None
    ) -> list[dict[str, Any]]: ...
    def callback(self, callback_id: int) -> dict[str, Any] | None: ...
    def feed(self, after_id: int, limit: int) -> list[dict[str, Any]]: ...
    def latest_callback_id(self) -> int: ...
    def campaign(self, message_id: int) -> dict[str, Any] | None: ...
    def label_report(self, label: str) -> dict[str, Any] | None: ...
    def timeline(self, message_id: int | None, label: str | None) -> dict[str, Any]: ...
    def counts(self) -> dict[str, int]: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


UNATTRIBUTED_WINDOW = (
    "SELECT max(id), count(*) FROM (SELECT id FROM events WHERE id > {0}"
    " ORDER BY id LIMIT {0}) AS w"
)
"""The scan window of a page of `/api/unattributed` (its last event id, its size), on either
store (`{0}` is the placeholder): the ids alone, read from the table's own key."""
UNATTRIBUTED_ROWS = (
    "SELECT e.id, e.callback_id, e.position, e.type, e.email, e.meta FROM events AS e"
    " WHERE e.id > {0} AND e.id <= {0}"
    " AND NOT EXISTS (SELECT 1 FROM sent_messages AS s WHERE s.meta = e.meta)"
    " ORDER BY e.id LIMIT {0}"
)
"""The window's events whose meta was never sent, on either store: only these leave the
database (as one left join, every event of the window did, ten per item asked for)."""


def unattributed_page(
    window: Sequence[Any], rows: Sequence[Sequence[Any]], limit: int, scan: int
) -> Page:
    """One page of `/api/unattributed`, on either store, from its scan window (last event id,
    events in it) and the window's unattributed events, `limit + 1` at most, in id order, each
    (event id, callback_id, position, type, email, meta). The cursor is the last event id
    looked at, so a window with no unattributed event still moves on."""
    keys = ("callback_id", "position", "type", "email", "meta")
    items = [dict(zip(keys, row[1:6], strict=True)) for row in rows[:limit]]
    if len(rows) > limit:
        return Page(items, rows[limit - 1][0])
    return Page(items, window[0] if window[1] == scan else None)


def profile_from_history(email: str, rows: Iterable[Sequence[Any]]) -> dict[str, Any] | None:
    """A profile from its (type, meta, received_at, callback id) rows in order, on either store:
    unsubscribing is sticky, nothing re-subscribes (PROTOCOL.md section 5). None when it was
    never heard of. Each step names the callback that brought it, so a change can be traced."""
    history = []
    subscribed = True
    for kind, meta, at, callback_id in rows:
        subscribed = subscribed and kind not in effects.UNSUBSCRIBING
        history.append(
            {
                "at": at,
                "cause": kind,
                "meta": meta,
                "subscribed": subscribed,
                "callback_id": callback_id,
            }
        )
    if not history:
        return None
    return {
        "email": profile_key(email),
        "subscribed": subscribed,
        "updated_at": history[-1]["at"],
        "history": history,
    }


CALLBACK_COLUMNS = (
    "id",
    "received_at",
    "remote_addr",
    "content_type",
    "body",
    "status",
    "response",
)
"""The raw log's columns as `/api/callbacks` shows them, in order."""


def callback_page(rows: Iterable[Mapping[str, Any]], max_bytes: int | None) -> list[dict[str, Any]]:
    """A page of the raw log from its rows, on either store: the body as text (and its size in
    bytes as received), the stored reply as JSON, and no more rows once the bodies pass
    `max_bytes` (rows are read one at a time, so a page of large bodies is cut before it is all
    held)."""
    page: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        body = bytes(row["body"])
        page.append(
            {
                **{name: row[name] for name in CALLBACK_COLUMNS},
                "body": body.decode("utf-8", "replace"),
                "response": json.loads(row["response"]),
                "bytes": len(body),
            }
        )
        size += len(body)
        if max_bytes is not None and size >= max_bytes:
            break
    return page


FEED_COLUMNS = ("id", "received_at", "remote_addr", "content_type", "status", "response")
"""The raw log's columns the live feed shows: everything but the body, whose size it shows."""


def feed_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The live feed's rows, on either store: the stored reply as JSON, the body's size."""
    return [
        {
            **{name: row[name] for name in FEED_COLUMNS},
            "response": json.loads(row["response"]),
            "bytes": row["bytes"],
        }
        for row in rows
    ]


def system_event_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """A system_events row as the read API shows it, on either store (a SQLite row or a dict)."""
    cause = effects.Cause(
        row["cause"],
        row["description"],
        row["email"],
        row["message_id"],
        row["label"],
        row["variant"],
        row["error"],
    )
    return {
        "id": row["id"],
        "name": row["name"],
        "profile": row["profile"],
        "type": row["cause"],
        "meta": row["meta"],
        "message_id": row["message_id"],
        "label": row["label"],
        "variant": row["variant"],
        "created_at": row["created_at"],
        "properties": effects.properties(row["name"], cause),
    }


TIMELINE_BUCKETS = 30
"""Columns of a report's timeline of arrivals."""


@dataclass(frozen=True, slots=True)
class EventStates:
    """What the store made of a callback's events, by (meta, type): where each was first seen
    (callback id, position), which metas the sender recorded as sent, and the system events each
    raised (first-seen ones only), in id order. Read for the whole callback at once, in a fixed
    number of queries (`callback_state_reads`), not three per event: a 1000-event callback made
    3001 queries and took 60 ms to open."""

    first_seen: dict[tuple[str, str], tuple[int, int]]
    sent: set[str]
    raised: dict[tuple[str, str], list[dict[str, Any]]]


def callback_state_reads(wanted: str, first_seen: str) -> tuple[str, str, str]:
    """The three reads of `EventStates`, on either store: first sightings, sent metas, raised
    system events, each over the callback's distinct (meta, type) pairs. `wanted` is the
    statement's opening that names those pairs as the table `wanted(meta, type)` (each store
    passes them as one parameter its own way); `first_seen` is the store's test for a first
    sighting, written as its partial index `events_first_seen` is, so the planner uses it. The
    system events are read arm by arm (`raised_arm`, `FAILURE_ARM`), not from the view: SQLite
    filled the whole view to join it (650 ms at 100,000 events)."""
    raised = raised_arm(
        "c.received_at",
        "FROM wanted AS w JOIN events AS e ON e.meta = w.meta AND e.type = w.type"
        " JOIN raises AS r ON r.type = e.type JOIN callbacks AS c ON c.id = e.callback_id"
        f" WHERE {first_seen}",
    )
    return (
        f"{wanted} SELECT e.meta, e.type, e.callback_id, e.position"
        " FROM wanted AS w JOIN events AS e ON e.meta = w.meta AND e.type = w.type"
        f" WHERE {first_seen}",
        f"{wanted} SELECT s.meta FROM sent_messages AS s WHERE s.meta IN (SELECT meta FROM wanted)",
        f"{wanted} {raised.select} UNION ALL {FAILURE_ARM.select}"
        f" AND f.meta IN (SELECT meta FROM wanted WHERE type = {FAILURE_ARM.cause}) ORDER BY id",
    )


def event_states(
    first_seen: Iterable[Sequence[Any]],
    sent: Iterable[Sequence[Any]],
    raised: Iterable[Mapping[str, Any]],
) -> EventStates:
    """`EventStates` from the rows of `callback_state_reads`, on either store."""
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in raised:
        by_pair.setdefault((row["meta"], row["cause"]), []).append(system_event_item(row))
    return EventStates(
        {(meta, kind): (callback_id, position) for meta, kind, callback_id, position in first_seen},
        {row[0] for row in sent},
        by_pair,
    )


def callback_detail(
    item: dict[str, Any],
    body: bytes,
    states: Callable[[list[tuple[str, str]]], EventStates],
) -> dict[str, Any]:
    """One logged callback with its accepted events, on either store.

    The events are read from the body again with the same pure `read_batch` that produced the
    reply (the ones it refused are in the stored reply), each with its meta decoded into fields
    and what the store made of it, read by `states` for the callback's distinct (meta, type)
    pairs at once. An event is a duplicate unless it is the first seen of its (meta, type):
    this callback, this position.
    """
    try:
        accepted = read_batch(body).accepted
    except PayloadRejected:
        return {**item, "events": []}
    found = states(list(dict.fromkeys(zip(accepted.metas, accepted.types, strict=True))))
    events = []
    for position, group, kind, email, meta, description in zip(
        *_accepted_columns(accepted), strict=True
    ):
        events.append(
            {
                "position": position,
                "group": group,
                "type": kind,
                "email": email,
                "meta": meta,
                "fields": meta_fields(meta),
                "description": description,
                "duplicate": found.first_seen.get((meta, kind)) != (item["id"], position),
                "attributed": meta in found.sent,
                "system_events": found.raised.get((meta, kind), []),
            }
        )
    return {**item, "events": events}


def _accepted_columns(accepted: Accepted) -> tuple[list[Any], ...]:
    return (
        accepted.positions,
        accepted.groups,
        accepted.types,
        accepted.emails,
        accepted.metas,
        accepted.descriptions,
    )


def meta_fields(meta: str) -> dict[str, Any]:
    """A meta decoded into its named fields, as the pages and the API show it."""
    parsed = parse_meta(meta)
    return {**parsed._asdict(), "send_date": parsed.send_date}


def timeline_from(
    span: tuple[float | None, float | None], rows: Iterable[Sequence[Any]]
) -> dict[str, Any]:
    """A report's arrivals in `TIMELINE_BUCKETS` equal columns from (bucket, type, count) rows,
    on either store; `span` is the first and last arrival. The last arrival falls in the last
    column, not one past it."""
    start, end = span
    if start is None or end is None:
        return {"start": None, "width": None, "buckets": []}
    width = timeline_width(span)
    buckets: list[dict[str, int]] = [{} for _ in range(TIMELINE_BUCKETS)]
    for bucket, kind, count in rows:
        column = buckets[min(int(bucket), TIMELINE_BUCKETS - 1)]
        column[kind] = column.get(kind, 0) + int(count)
    return {
        "start": start,
        "width": width,
        "buckets": [{"at": start + i * width, "counts": c} for i, c in enumerate(buckets)],
    }


def timeline_width(span: tuple[float | None, float | None]) -> float:
    """Seconds per column: the span cut in `TIMELINE_BUCKETS`, one second at least."""
    start, end = span
    return max(((end or 0.0) - (start or 0.0)) / TIMELINE_BUCKETS, 1.0)


def timeline_filter(
    message_id: int | None, label: str | None, mark: str, first_seen: str
) -> tuple[str, list[Any]]:
    """The events a timeline covers, first-seen ones of a campaign, a label or both, as a SQL
    condition in the store's dialect: `mark` is its placeholder, `first_seen` its test."""
    sql = first_seen
    args: list[Any] = []
    for column, value in (("message_id", message_id), ("label", label)):
        if value is not None:
            sql += f" AND e.{column} = {mark}"
            args.append(value)
    return sql, args


RESET_TABLES = ("events", "callbacks", "sent_messages", "send_failures")
"""What a reset empties on both stores (SQLite also empties its counters)."""
SENT_TALLIES = {"tallies": "sent_tallies", "label_tallies": "label_sent_tallies"}
"""The report tallies, on both stores, each with its count of sent messages: per (message id,
label), read by a campaign's report, and per label, read by a label's."""
COUNTER_TABLES = ("totals", *SENT_TALLIES, *SENT_TALLIES.values())
"""SQLite's counters, which a reset empties with the tables they count."""


@dataclass(frozen=True, slots=True)
class EventArm:
    """One half of the `system_events` view, read a page at a time in the view's order.

    The view (raised events, then send failures, UNION ALL) cannot be read in order by an index:
    every page sorted every system event, 170 ms at 100,000 events. Each half can: raised events
    by walking `callbacks_received` and each callback's events (`events_callback`; CROSS JOIN
    keeps that order, as SQLite would otherwise scan all events), one campaign's by
    `events_message_received`, failures by `send_failures_failed`. `merge_event_pages` merges
    the two pages (PostgreSQL's store reads its arms the same way). The columns are the view's,
    so a row reads as a view row (`system_event_item`); filters name the columns they stand for
    (`cause`, `name`, `label`), as PostgreSQL reads no output name in a WHERE. `order` sorts ties
    of `time` as (abs(key), key) does, in columns an index already holds in that order (a raised
    event's key is its event id * 2 + ordinal, and no type raises more than two).
    """

    select: str
    time: str
    key: str
    order: str
    cause: str
    name: str
    label: str

    def page(
        self,
        type: str | None,
        message_id: int | None,
        after: EventCursor | None,
        name: str | None = None,
        label: str | None = None,
        mark: str = "?",
    ) -> tuple[str, list[Any]]:
        """The arm's query, filtered and after the cursor, in order; `mark` is the driver's
        parameter placeholder."""
        sql, args = self.select, []
        filters = (
            (self.cause, type),
            (self.name, name),
            (self.label, label),
            ("message_id", message_id),
        )
        for column, value in filters:
            if value is not None:
                sql += f" AND {column} = {mark}"
                args.append(value)
        if after is not None:
            # (created_at, abs(id), id) > the cursor, with the time bound alone first so the
            # index range starts at the cursor.
            sql += (
                f" AND {self.time} >= {mark} AND ({self.time} > {mark}"
                f" OR (abs({self.key}), {self.key}) > (abs({mark}), {mark}))"
            )
            args += [after.created_at, after.created_at, after.id, after.id]
        return f"{sql} ORDER BY {self.time}, {self.order}", args


def merge_event_pages(arms: Iterable[Iterable[Any]], limit: int) -> list[dict[str, Any]]:
    """The first `limit` (all if negative) rows of the arms' pages, each already in the view's
    order (created_at, abs(id), id), merged into that order as system events."""
    rows = heapq.merge(*arms, key=lambda r: (r["created_at"], abs(r["id"]), r["id"]))
    return [system_event_item(row) for row in itertools.islice(rows, limit if limit >= 0 else None)]


_RAISED_COLUMNS = (
    "SELECT e.id * 2 + r.ordinal AS id, r.name, e.profile, e.type AS cause, e.meta,"
    " e.message_id, e.label, e.variant, e.email, e.description, NULL AS error,"
)


def raised_arm(time: str, source: str) -> EventArm:
    """An arm of raised events (event rows `e` joined to `raises` as `r`), ordered by `time`
    then by the event's key; `source` is the FROM and WHERE clauses, which each store writes
    for its own planner."""
    return EventArm(
        f"{_RAISED_COLUMNS} {time} AS created_at {source}",
        time,
        "(e.id * 2 + r.ordinal)",
        "e.id, r.ordinal",
        "e.type",
        "r.name",
        "e.label",
    )


_EVENT_ARM = raised_arm(
    "c.received_at",
    "FROM callbacks AS c CROSS JOIN events AS e ON e.callback_id = c.id"
    " JOIN raises AS r ON r.type = e.type"
    " WHERE e.duplicate = 0",
)
_CAMPAIGN_ARM = raised_arm(
    "e.received_at",
    "FROM events AS e JOIN raises AS r ON r.type = e.type WHERE e.duplicate = 0",
)
"""Raised events of one campaign: its slice of `events_message_received` is already in the
view's order, so a page reads `limit` rows, where walking the callbacks would read them all and
the campaign's events by `message_id` alone were sorted for every page (38 ms at a million)."""
FAILURE_ARM = EventArm(
    "SELECT -f.id AS id, 'Notification Failed' AS name, f.profile, 'send_failed' AS cause,"
    " f.meta, f.message_id, f.label, f.variant, f.recipient AS email, f.detail AS description,"
    " f.error, f.failed_at AS created_at"
    " FROM send_failures AS f WHERE 1 = 1",
    "f.failed_at",
    "(-f.id)",
    "f.id",
    "'send_failed'",
    "'Notification Failed'",
    "f.label",
)
"""Send failures in the view's order by `send_failures_failed`; the same SQL on both stores."""

_CALLBACK_STATE_READS = callback_state_reads(
    "WITH wanted(meta, type) AS"
    " (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))",
    "e.duplicate = 0",
)
"""SQLite's reads of a callback's event states: the pairs come as one JSON array of pairs
(`json_extract`, not `->>`, which SQLite has only since 3.38)."""


_LOG_SYNC = "FULL"
"""Every commit of the log waits for the disk: the 200 is sent only after it."""
_DERIVED_SYNC = "NORMAL"
"""The projection's commits, which the log can derive again, do not (see `SQLiteStore._write`)."""
_AUTOCHECKPOINT_PAGES = 16384
"""WAL pages (64 MB) after which a commit checkpoints, only a safety net: SQLite's 1000 made
nearly every projection step's commit (a few MB of index pages) copy the WAL into the database
while holding the write lock the callbacks wait for. The projection's thread checkpoints after
each step instead, outside the lock (`Projection.background_step`)."""


class SQLiteStore:
    """SQLite behind the `Store` interface: one connection per thread, writes serialised."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.projection = Projection(self._connection, self._write)
        try:
            self._create()
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(
                f"cannot open the store {self.path}: {exc}; check that its folder exists and is"
                " writable"
            ) from exc

    def _create(self) -> None:
        _put_bodies_last(self.path)
        with self._write() as db:
            _copy_received_at(db)
        db.executescript(SCHEMA)
        with self._write() as db:
            db.execute("DELETE FROM raises")
            db.executemany(
                "INSERT INTO raises (type, ordinal, name) VALUES (?, ?, ?)",
                [
                    (kind, ordinal, name)
                    for kind, names in effects.RAISES.items()
                    for ordinal, name in enumerate(names)
                ],
            )
            if not db.execute("SELECT count(*) FROM totals").fetchone()[0]:
                _count_everything(db)
            elif db.execute(_LABELS_UNCOUNTED).fetchone()[0]:
                _count_labels(db)

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                self.path, isolation_level=None, timeout=30, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={_LOG_SYNC}")
            db.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
            db.execute("PRAGMA foreign_keys=ON")
            db.row_factory = sqlite3.Row
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextmanager
    def _write(self, derived: bool = False) -> Iterator[sqlite3.Connection]:
        """One writer at a time. The in-process lock wakes waiters at once, where SQLite's busy
        handler would sleep in steps of up to 100 ms; `BEGIN IMMEDIATE` still guards against
        writers in other processes.

        `derived`: the transaction writes only what the projection can derive from the log again
        (its cursor moves with its rows), so its commit does not wait for the disk
        (`synchronous=NORMAL`). It stays consistent: the WAL is appended in order, so the next
        commit of the log, synced, makes it durable too, and a crash before that rolls the
        projection back to a cursor it resumes from. The log's commits, which the 200 waits
        for, keep `synchronous=FULL`.
        """
        db = self._connection()
        with self._write_lock:
            if derived:
                db.execute(f"PRAGMA synchronous={_DERIVED_SYNC}")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    # A failed COMMIT can leave the transaction open, and this thread's next
                    # BEGIN would then fail for good.
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            finally:
                if derived:
                    db.execute(f"PRAGMA synchronous={_LOG_SYNC}")

    def close(self) -> None:
        self.projection.stop()
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    def record_callback(self, raw: RawCallback, batch: Batch) -> int:
        """Commit an accepted callback to the log; its events are projected from it later.

        `batch` must be what `read_batch` made of `raw.body`. The projection takes it from memory
        while it is there and otherwise reads the body again with the same pure function, so the
        events derived are exactly the ones the 200 reported as processed.
        """
        with self._write() as db:
            callback_id = int(
                db.execute(
                    "INSERT INTO callbacks (received_at, remote_addr, content_type, body, status,"
                    " response) VALUES (?, ?, ?, ?, 200, ?)",
                    (
                        raw.received_at,
                        raw.remote_addr,
                        raw.content_type,
                        raw.body,
                        json.dumps(batch.reply().body),
                    ),
                ).lastrowid
                or 0
            )
            add_to_totals(db, callbacks=1)
            generation = self.projection.generation
        self.projection.handed(callback_id, batch.accepted, generation)
        return callback_id

    def record_sent(self, messages: Iterable[SentMessage]) -> None:
        rows = [
            (m.recipient, m.meta, m.message_id, m.label, m.variant, m.sent_at) for m in messages
        ]
        with self._write() as db:
            before = db.execute("SELECT coalesce(max(id), 0) FROM sent_messages").fetchone()[0]
            db.executemany(
                "INSERT OR IGNORE INTO sent_messages (recipient, meta, message_id, label,"
                " variant, sent_at) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.execute(_TALLY_SENT, (before,))
            db.execute(_LABEL_TALLY_SENT, (before,))
            add_to_totals(
                db,
                sent_messages=db.execute(
                    "SELECT count(*) FROM sent_messages WHERE id > ?", (before,)
                ).fetchone()[0],
            )

    def record_send_failure(self, recipient: str, meta: str, error: str, detail: str) -> None:
        """A message that never reached the ESP raises Notification Failed with that Error."""
        parsed = parse_meta(meta)
        with self._write() as db:
            db.execute(
                "INSERT INTO send_failures (recipient, profile, meta, message_id, label, variant,"
                " error, detail, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    recipient,
                    profile_key(parsed.email),
                    meta,
                    parsed.message_id,
                    parsed.label,
                    parsed.variant,
                    error,
                    detail,
                    time.time(),
                ),
            )
            add_to_totals(db, system_events=1)

    def sent_messages(self) -> list[SentMessage]:
        rows = self._connection().execute(
            "SELECT recipient, meta, message_id, label, variant, sent_at FROM sent_messages"
            " ORDER BY id"
        )
        return [SentMessage(*row) for row in rows]

    def min_message_id(self) -> int | None:
        """The lowest message id sent so far, so a new campaign can count down from below it."""
        return self._connection().execute("SELECT min(message_id) FROM sent_messages").fetchone()[0]

    def sent_page(self, after: int, limit: int) -> Page:
        """Sent messages in the order recorded, `limit` of them from the id past `after`."""
        rows = (
            self._connection()
            .execute(
                "SELECT id, recipient, meta, message_id, label, variant, sent_at FROM sent_messages"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit + 1),
            )
            .fetchall()
        )
        items = [SentMessage(*row[1:]) for row in rows[:limit]]
        return Page(items, rows[limit - 1][0] if len(rows) > limit else None)

    def unattributed(self, after: int = 0, limit: int = PAGE_SIZE) -> Page:
        """Callback events whose meta was never recorded as sent: misattributed or forged.

        Events are read in id order past `after`, at most `SCAN_PER_ITEM * limit` of them per
        page, so a page may hold fewer than `limit` events (even none) and still have a next.
        """
        self.projection.catch_up()
        scan = SCAN_PER_ITEM * limit
        db = self._connection()
        window = db.execute(UNATTRIBUTED_WINDOW.format("?"), (after, scan)).fetchone()
        rows = db.execute(
            UNATTRIBUTED_ROWS.format("?"), (after, window[0] or after, limit + 1)
        ).fetchall()
        return unattributed_page(window, rows, limit, scan)

    def profile(self, email: str) -> dict[str, Any] | None:
        """Subscription state and history; unsubscribing is sticky, nothing re-subscribes."""
        self.projection.catch_up()
        rows = self._connection().execute(
            "SELECT e.type, e.meta, c.received_at, c.id FROM events AS e"
            " JOIN callbacks AS c ON c.id = e.callback_id"
            " WHERE e.profile = ? AND e.duplicate = 0 ORDER BY e.id",
            (profile_key(email),),
        )
        return profile_from_history(email, rows)

    def events(self, type: str | None = None, message_id: int | None = None) -> list[dict]:
        """Every system event in the order raised, for in-process use; HTTP reads `event_page`."""
        return self.event_page(type, message_id, None, -1)

    def event_page(
        self,
        type: str | None,
        message_id: int | None,
        after: EventCursor | None,
        limit: int,
        *,
        name: str | None = None,
        label: str | None = None,
    ) -> list[dict[str, Any]]:
        """Up to `limit` system events (all if negative) in the order they were raised, after
        `after`; `type` filters on the causing type, `name` on the system event's own name. A
        page's memory is bounded by `limit`."""
        self.projection.catch_up()
        db = self._connection()
        arms = []
        for arm in (_EVENT_ARM if message_id is None else _CAMPAIGN_ARM, FAILURE_ARM):
            sql, args = arm.page(type, message_id, after, name, label)
            arms.append(db.execute(f"{sql} LIMIT ?", [*args, limit]))
        return merge_event_pages(arms, limit)

    def callbacks(
        self, after_id: int = 0, limit: int = PAGE_SIZE, max_bytes: int | None = None
    ) -> list[dict[str, Any]]:
        """The raw log after `after_id`: `limit` rows, fewer once their bodies pass `max_bytes`."""
        rows = self._connection().execute(
            f"SELECT {', '.join(CALLBACK_COLUMNS)} FROM callbacks WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return callback_page(rows, max_bytes)

    def feed(self, after_id: int, limit: int) -> list[dict[str, Any]]:
        """The raw log after `after_id` without its bodies: a live feed's poll reads no body."""
        rows = self._connection().execute(
            f"SELECT {', '.join(FEED_COLUMNS)}, length(body) AS bytes FROM callbacks"
            " WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return feed_rows(rows)

    def callback(self, callback_id: int) -> dict[str, Any] | None:
        """One logged callback and what became of each of its events; None if there is none."""
        self.projection.catch_up()
        db = self._connection()
        row = db.execute(
            f"SELECT {', '.join(CALLBACK_COLUMNS)} FROM callbacks WHERE id = ?", (callback_id,)
        ).fetchone()
        if row is None:
            return None
        return callback_detail(callback_page([row], None)[0], bytes(row["body"]), self._states)

    def _states(self, pairs: list[tuple[str, str]]) -> EventStates:
        db = self._connection()
        wanted = (json.dumps(pairs),)
        first_seen, sent, raised = (db.execute(sql, wanted) for sql in _CALLBACK_STATE_READS)
        return event_states(first_seen, sent, raised)

    def latest_callback_id(self) -> int:
        """The id of the newest logged callback, 0 for an empty log (where a live feed starts)."""
        db = self._connection()
        return db.execute("SELECT coalesce(max(id), 0) FROM callbacks").fetchone()[0]

    def timeline(self, message_id: int | None, label: str | None) -> dict[str, Any]:
        """First-seen events of a campaign or label by arrival time (`timeline_from`)."""
        self.projection.catch_up()
        where, args = timeline_filter(message_id, label, "?", "e.duplicate = 0")
        source = f"FROM events AS e JOIN callbacks AS c ON c.id = e.callback_id WHERE {where}"
        db = self._connection()
        span = db.execute(
            f"SELECT min(c.received_at), max(c.received_at) {source}", args
        ).fetchone()
        rows = db.execute(
            f"SELECT CAST((c.received_at - ?) / ? AS INTEGER) AS b, e.type, count(*) {source}"
            " GROUP BY b, e.type",
            [span[0], timeline_width(tuple(span)), *args],
        )
        return timeline_from(tuple(span), rows)

    def reset(self) -> None:
        """Empty the log and everything derived from it, as a fresh store: for tests, between
        runs. No projection step is under way meanwhile; a callback committed before the reset
        is gone with the rest."""
        with self.projection.resetting() as db:
            for table in (*RESET_TABLES, *COUNTER_TABLES):
                db.execute(f"DELETE FROM {table}")

    def _report(self, tallies: str, column: str, value: Any) -> dict[str, Any] | None:
        """Counts from the tallies (`tallies` and `sent_<tallies>`, rows by `column`): a few rows
        per campaign or label, whatever its size."""
        self.projection.catch_up()
        db = self._connection()
        counts = dict.fromkeys(effects.REPORT_COUNTERS, 0)
        duplicates = 0
        for kind, first_seen, repeated in db.execute(
            f"SELECT type, sum(first_seen), sum(duplicates) FROM {tallies} WHERE {column} = ?"
            " GROUP BY type",
            (value,),
        ):
            duplicates += repeated
            if first_seen:
                counts[kind] = first_seen
        counts[effects.SEND_FAILED] = db.execute(
            f"SELECT count(*) FROM send_failures WHERE {column} = ?", (value,)
        ).fetchone()[0]
        sent = db.execute(
            f"SELECT coalesce(sum(sent), 0) FROM {SENT_TALLIES[tallies]} WHERE {column} = ?",
            (value,),
        ).fetchone()[0]
        if not (sent or duplicates or any(counts.values())):
            return None
        return {"sent": sent, "counts": counts, "duplicates_ignored": duplicates}

    def campaign(self, message_id: int) -> dict[str, Any] | None:
        report = self._report("tallies", "message_id", message_id)
        return None if report is None else {"message_id": message_id, **report}

    def label_report(self, label: str) -> dict[str, Any] | None:
        report = self._report("label_tallies", "label", label)
        return None if report is None else {"label": label, **report}

    def counts(self) -> dict[str, int]:
        """The totals kept with the writes: no table is counted on a read."""
        self.projection.catch_up()
        totals = dict(self._connection().execute("SELECT name, value FROM totals").fetchall())
        return {name: totals.get(name, 0) for name in TOTALS}


_BODY_LAST = ("id", "received_at", "remote_addr", "content_type", "status", "response", "body")


def _put_bodies_last(path: Path) -> None:
    """A store written when `callbacks` held its body before `status` and `response` gets the
    table rebuilt once, when opened, with the body last (0.2 s at 100 callbacks of 1000 events),
    so reading a callback's summary never walks its body's overflow pages.

    On a connection of its own, without foreign keys: dropping the old table would otherwise
    check every event row against it. The view and the index on the table go with it, and the
    schema creates them again.
    """
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        db.execute("BEGIN IMMEDIATE")
        columns = tuple(row[1] for row in db.execute("PRAGMA table_info(callbacks)"))
        if columns and columns[-1] != "body":
            listed = ", ".join(_BODY_LAST)
            db.execute("DROP VIEW IF EXISTS system_events")
            db.execute(
                "CREATE TABLE callbacks_body_last (id INTEGER PRIMARY KEY,"
                " received_at REAL NOT NULL, remote_addr TEXT, content_type TEXT,"
                " status INTEGER NOT NULL, response TEXT NOT NULL, body BLOB NOT NULL)"
            )
            db.execute(f"INSERT INTO callbacks_body_last ({listed}) SELECT {listed} FROM callbacks")
            db.execute("DROP TABLE callbacks")
            db.execute("ALTER TABLE callbacks_body_last RENAME TO callbacks")
        db.execute("COMMIT")
    finally:
        db.close()


def _copy_received_at(db: sqlite3.Connection) -> None:
    """A store written before event rows kept their callback's `received_at` gets it copied
    once, when opened, before its campaign index is built (1.3 s at 100,000 events)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    if not columns or "received_at" in columns:
        return
    db.execute("ALTER TABLE events ADD COLUMN received_at REAL NOT NULL DEFAULT 0")
    db.execute(
        "UPDATE events SET received_at ="
        " (SELECT c.received_at FROM callbacks AS c WHERE c.id = events.callback_id)"
    )


TOTALS = ("callbacks", "events", "system_events", "profiles", "sent_messages")
_TALLY_SENT = """
    INSERT INTO sent_tallies (message_id, label, sent)
    SELECT message_id, label, count(*) FROM sent_messages WHERE id > ? GROUP BY message_id, label
    ON CONFLICT DO UPDATE SET sent = sent + excluded.sent
"""
_LABEL_TALLY_SENT = """
    INSERT INTO label_sent_tallies (label, sent)
    SELECT label, count(*) FROM sent_messages WHERE id > ? GROUP BY label
    ON CONFLICT DO UPDATE SET sent = sent + excluded.sent
"""
_LABELS_UNCOUNTED = """
    SELECT (NOT EXISTS (SELECT 1 FROM label_tallies) AND EXISTS (SELECT 1 FROM tallies))
        OR (NOT EXISTS (SELECT 1 FROM label_sent_tallies) AND EXISTS (SELECT 1 FROM sent_tallies))
"""
"""True for a store written before the label counters were kept: every step that moves a row of
`tallies` or `sent_tallies` moves its label's row too, so only such a store has the one without
the other."""


def _count_everything(db: sqlite3.Connection) -> None:
    """Counters for a store written before they were kept: counted once, in one transaction."""
    db.executemany(
        "INSERT INTO totals (name, value) VALUES (?, ?)",
        [
            ("callbacks", db.execute("SELECT count(*) FROM callbacks").fetchone()[0]),
            ("events", db.execute("SELECT count(*) FROM events").fetchone()[0]),
            ("system_events", db.execute("SELECT count(*) FROM system_events").fetchone()[0]),
            (
                "profiles",
                db.execute(
                    "SELECT count(DISTINCT profile) FROM events WHERE duplicate = 0"
                ).fetchone()[0],
            ),
            ("sent_messages", db.execute("SELECT count(*) FROM sent_messages").fetchone()[0]),
        ],
    )
    db.execute("DELETE FROM tallies")
    db.execute("DELETE FROM sent_tallies")
    db.execute(
        "INSERT INTO tallies SELECT message_id, label, type, sum(duplicate = 0), sum(duplicate)"
        " FROM events GROUP BY message_id, label, type"
    )
    db.execute(_TALLY_SENT, (0,))
    _count_labels(db)


def _count_labels(db: sqlite3.Connection) -> None:
    """The label counters of a store written before they were kept, added up once from the
    (message id, label) tallies, in the transaction that opens it."""
    db.execute("DELETE FROM label_tallies")
    db.execute("DELETE FROM label_sent_tallies")
    db.execute(
        "INSERT INTO label_tallies SELECT label, type, sum(first_seen), sum(duplicates)"
        " FROM tallies GROUP BY label, type"
    )
    db.execute(
        "INSERT INTO label_sent_tallies SELECT label, sum(sent) FROM sent_tallies GROUP BY label"
    )
