"""The persistent spool: a SQLite file (WAL) holding received mail, pending events and batches.

At-least-once delivery rests on it: a message's events are committed before its DATA gets 250,
and an event leaves the spool only once a receiver answered its batch. Killed and restarted on
the same file, the dispatcher finds every event and batch still pending and sends them.

WAL with `synchronous=NORMAL` survives a killed process (not a power cut), which is the promise
here. SMTP sessions do not commit one by one: `SpoolWriter` commits whatever queued during one
event-loop iteration in one transaction (group commit), so concurrent sessions share a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from simulator.errors import SimulatorError
from simulator.protocol.payloads import BuiltBatch, ExpectedFailure, SpooledEvent, build_batch

PENDING = "pending"
BATCHED = "batched"
DELIVERED = "delivered"
SPLIT = "split"
DEAD_LETTER = "dead_letter"
BATCH_STATES = (PENDING, DELIVERED, SPLIT, DEAD_LETTER)
"""A batch is pending until answered; then delivered, split (its halves are new batches) or a
dead letter (kept with its reason in `dead_letters`). No state drops events."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    peer TEXT,
    mail_from TEXT,
    recipients TEXT NOT NULL,
    meta TEXT,
    message_key TEXT NOT NULL,
    size INTEGER NOT NULL,
    echo TEXT,
    authentication_results TEXT,
    auth TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id),
    grp TEXT NOT NULL,
    type TEXT NOT NULL,
    email TEXT NOT NULL,
    meta TEXT,
    description TEXT,
    mutation TEXT,
    extra_keys INTEGER NOT NULL DEFAULT 0,
    dup_of INTEGER,
    echo_ref INTEGER NOT NULL DEFAULT 0,
    due_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    batch_id INTEGER
);
CREATE INDEX IF NOT EXISTS events_pending ON events(state, due_at, id);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    payload TEXT NOT NULL DEFAULT '',
    expected TEXT NOT NULL,
    event_ids TEXT,
    bytes INTEGER NOT NULL DEFAULT 0,
    event_count INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_status INTEGER,
    problems TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS batches_due ON batches(state, next_at);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    at REAL NOT NULL,
    status INTEGER,
    error TEXT,
    body TEXT,
    problems TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    at REAL NOT NULL,
    reason TEXT NOT NULL,
    last_status INTEGER,
    last_body TEXT,
    event_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    stage TEXT NOT NULL,
    addresses TEXT NOT NULL,
    action TEXT NOT NULL,
    reply TEXT,
    why TEXT NOT NULL
);
"""
TABLES = ("attempts", "dead_letters", "batches", "events", "messages", "refusals")
"""Every table of the spool, children before parents: what `clear` empties."""
# Columns added since the first spool format, for a spool file made by an older version.
_ADDED_COLUMNS = (
    ("messages", "echo", "TEXT"),
    ("messages", "authentication_results", "TEXT"),
    ("messages", "auth", "TEXT"),
    ("events", "echo_ref", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "event_ids", "TEXT"),
    ("batches", "bytes", "INTEGER NOT NULL DEFAULT 0"),
    ("messages", "raw_meta", "TEXT"),
    ("events", "why", "TEXT"),
)


class SpoolError(SimulatorError, RuntimeError):
    """The spool file cannot be opened or written; the message says which file and why."""


class SpoolDiskFull(SpoolError):
    """A write met a full disk (SQLITE_FULL): SMTP answers it as insufficient storage, 452 4.3.1,
    rather than as a broken spool, since freeing space is what the operator has to do."""


def _rollback(conn: sqlite3.Connection) -> None:
    """Undo the open transaction, if any. SQLite rolls back by itself on some errors (a full
    disk among them), and a ROLLBACK then would raise "no transaction is active" instead of
    the error that matters."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


# EventRecord and MessageRecord are made for every message on the SMTP event loop: slots but not
# frozen, since a frozen dataclass sets each field through object.__setattr__ and that made their
# construction about three times as costly. Nothing changes them after construction.
@dataclass(slots=True)
class EventRecord:
    group: str
    type: str
    email: str
    meta: str | None
    description: str | None
    mutation: str | None = None
    extra_keys: bool = False
    duplicate_after: float | None = None
    # Why the outcome was chosen (an address rule, or the outcome rates): shown by the dashboard.
    why: str | None = None


@dataclass(slots=True)
class MessageRecord:
    peer: str
    mail_from: str
    recipients: tuple[str, ...]
    meta: str | None
    message_key: str
    size: int
    events: tuple[EventRecord, ...] = ()
    received_at: float = field(default_factory=time.time)
    # The meta as the events echo it, stored once on the message: an event whose meta is this
    # string references it instead of holding a copy, so 100 recipients cost one meta, not 100.
    echo: str | None = None
    # With a scenario [authentication]: the value of the Authentication-Results header put in
    # front of the message, and the verdicts (`Verdicts.as_dict`) as JSON.
    authentication_results: str | None = None
    auth: str | None = None
    # The X-CleverTap_META header lines exactly as they arrived (folding included), for the
    # dashboard: what the sender wrote, next to `meta`, what the ESP extracted from it.
    raw_meta: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A fault answered an SMTP stage: what the dashboard lists as refused, and why."""

    stage: str
    addresses: tuple[str, ...]
    action: str
    reply: str | None
    why: str
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class DueBatch:
    id: int
    payload: dict[str, Any]
    expected: tuple[ExpectedFailure, ...]
    attempts: int
    # The body every attempt sends: rebuilt from the events in their stored order, which gives
    # the same bytes each time, so a retry resends exactly what the first attempt sent.
    body: str
    event_count: int


def connect(path: str | Path, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection with the spool's pragmas; one per thread."""
    try:
        conn = sqlite3.connect(
            str(path), timeout=30.0, isolation_level=None, check_same_thread=check_same_thread
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        for table, column, kind in _ADDED_COLUMNS:
            present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    except sqlite3.Error as exc:
        raise SpoolError(f"spool {path}: cannot open ({exc}); check the path is writable") from exc
    return conn


_INSERT_MESSAGE = (
    "INSERT INTO messages (id, received_at, peer, mail_from, recipients, meta, message_key, size,"
    " echo, authentication_results, auth, raw_meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = (
    "INSERT INTO events (id, message_id, grp, type, email, meta, echo_ref, description,"
    " mutation, extra_keys, why, due_at, dup_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_REFUSAL = (
    "INSERT INTO refusals (at, stage, addresses, action, reply, why) VALUES (?, ?, ?, ?, ?, ?)"
)


def _json_strings(values: tuple[str, ...]) -> str:
    """`json.dumps(values)` for a tuple of strings, byte for byte, without the encoder's setup
    (it ran once per message on the SMTP loop)."""
    return "[" + ", ".join(map(encode_basestring_ascii, values)) + "]"


def _next_id(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT IFNULL(MAX(id), 0) + 1 FROM {table}").fetchone()[0])


def insert_messages(conn: sqlite3.Connection, records: list[MessageRecord]) -> list[int]:
    """Insert a group of messages and their events; returns the message ids, in order.

    Call inside a write transaction. The ids are the ones SQLite would pick (max + 1, in order),
    given here so that all rows go in with one `executemany` per table: one statement per row
    was most of a group commit's cost.
    """
    message_id = _next_id(conn, "messages")
    event_id = _next_id(conn, "events")
    ids: list[int] = []
    messages: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    for record in records:
        ids.append(message_id)
        messages.append(
            (
                message_id,
                record.received_at,
                record.peer,
                record.mail_from,
                _json_strings(record.recipients),
                record.meta,
                record.message_key,
                record.size,
                record.echo,
                record.authentication_results,
                record.auth,
                record.raw_meta,
            )
        )
        for event in record.events:
            shared = record.echo is not None and event.meta == record.echo
            row = (
                message_id,
                event.group,
                event.type,
                event.email,
                None if shared else event.meta,
                int(shared),
                event.description,
                event.mutation,
                int(event.extra_keys),
                event.why,
            )
            first = event_id
            events.append((first, *row, record.received_at, None))
            event_id += 1
            if event.duplicate_after is not None:
                events.append((event_id, *row, record.received_at + event.duplicate_after, first))
                event_id += 1
        message_id += 1
    conn.executemany(_INSERT_MESSAGE, messages)
    conn.executemany(_INSERT_EVENT, events)
    return ids


class SpoolWriter:
    """Group commit on the SMTP event loop: `await writer.submit(record)` gives the message id.

    Records submitted during one loop iteration (many sessions' DATA at once) are committed in
    one transaction by a callback scheduled on the same loop. Committing in the loop thread costs
    it a short block per group (WAL, no fsync), far less than handing every message to another
    thread and back through the GIL.
    """

    def __init__(self, path: str | Path, on_commit: Callable[[int], None] | None = None) -> None:
        self._path = path
        self._on_commit = on_commit
        self._pending: list[tuple[MessageRecord, asyncio.Future[int]]] = []
        self._refusals: list[Refusal] = []
        self._flush_scheduled = False
        self._conn: sqlite3.Connection | None = None
        connect(path).close()

    def size(self) -> int:
        """Bytes the spool holds on disk (the file and its WAL): what the spool quota counts."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(f"{self._path}{suffix}").st_size
        return total

    def submit(self, record: MessageRecord) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((record, future))
        self._schedule(loop)
        return future

    def refused(self, refusal: Refusal) -> None:
        """Note a fault's refusal; it goes in with the next group commit (nobody waits on it)."""
        self._refusals.append(refusal)
        self._schedule(asyncio.get_running_loop())

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _flush(self) -> None:
        work, self._pending = self._pending, []
        refusals, self._refusals = self._refusals, []
        self._flush_scheduled = False
        if self._conn is None:
            self._conn = connect(self._path, check_same_thread=False)
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            ids = insert_messages(conn, [record for record, _ in work])
            if refusals:
                conn.executemany(
                    _INSERT_REFUSAL,
                    [
                        (r.at, r.stage, _json_strings(r.addresses), r.action, r.reply, r.why)
                        for r in refusals
                    ],
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            full = exc.sqlite_errorcode == sqlite3.SQLITE_FULL
            error = (SpoolDiskFull if full else SpoolError)(
                f"spool {self._path}: write failed ({exc})"
            )
            for _, future in work:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), message_id in zip(work, ids, strict=True):
            if not future.done():
                future.set_result(message_id)
        if self._on_commit is not None and work:
            self._on_commit(sum(len(record.events) for record, _ in work))


KEPT_BATCHES = 16
"""Claimed batches whose payload the reader keeps in memory (each at most the byte cap)."""

EVENT_OVERHEAD = 120
"""Bytes a callback event costs beyond its strings (keys, quotes, type): the byte estimate."""

# An event's columns as the payload builder takes them, its meta taken from the message when
# the event references it. The ids come from the index alone (the subquery), so only the
# claimed rows are read.
_EVENT_COLUMNS = (
    "e.id, e.grp, e.type, e.email, CASE WHEN e.echo_ref THEN m.echo ELSE e.meta END,"
    " e.description, e.mutation, e.extra_keys FROM events e JOIN messages m ON m.id = e.message_id"
)
_DUE_SIZES = (
    "SELECT e.id, LENGTH(e.email) + IFNULL(LENGTH(e.description), 0)"
    " + IFNULL(LENGTH(CASE WHEN e.echo_ref THEN m.echo ELSE e.meta END), 0)"
    " FROM events e JOIN messages m ON m.id = e.message_id"
    " WHERE e.id IN (SELECT id FROM events WHERE state = ? AND due_at <= ? ORDER BY id LIMIT ?)"
    " ORDER BY e.id"
)


def _within(sizes: list[tuple[int, int]], max_bytes: int) -> int:
    """How many of the first events fit `max_bytes` by estimate; at least one, so an event
    larger than the cap goes alone rather than never."""
    total = 0
    for taken, (_, size) in enumerate(sizes):
        total += size + EVENT_OVERHEAD
        if total > max_bytes and taken:
            return taken
    return len(sizes)


def _body(payload: dict[str, Any]) -> str:
    return json.dumps(payload)


class SpoolReader:
    """The dispatcher's and the listing's view of the spool, on its own connection."""

    def __init__(self, path: str | Path) -> None:
        self.conn = connect(path)
        # What `claim_batch` built, by batch id, until the batch is answered for good: what
        # `due_batches` would otherwise rebuild from the events. At most KEPT_BATCHES, so a
        # receiver that stays down cannot move the spool into RAM.
        self._built: dict[int, tuple[dict[str, Any], tuple[ExpectedFailure, ...], str]] = {}

    def close(self) -> None:
        self.conn.close()

    def due_events(self, now: float) -> tuple[int, float | None]:
        count, oldest = self.conn.execute(
            "SELECT COUNT(*), MIN(due_at) FROM events WHERE state = ? AND due_at <= ?",
            (PENDING, now),
        ).fetchone()
        return int(count), oldest

    def _events(self, ids: list[int]) -> list[SpooledEvent]:
        """The events with these ids, in the order given."""
        rows: dict[int, SpooledEvent] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(f"SELECT {_EVENT_COLUMNS} WHERE e.id IN ({marks})", chunk):
                rows[row[0]] = row
        return [rows[event_id] for event_id in ids]

    def claim_batch(
        self,
        size: int,
        now: float,
        build: Callable[[list[SpooledEvent]], BuiltBatch],
        max_bytes: int | None = None,
    ) -> int | None:
        """Move up to `size` due events, at most `max_bytes` of body, into a new batch.

        The bytes are estimated from the stored strings, then checked on the built body; a batch
        over the cap is halved until it fits or holds one event (which then goes alone).
        """
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            sizes = conn.execute(_DUE_SIZES, (PENDING, now, size)).fetchall()
            if not sizes:
                conn.execute("ROLLBACK")
                return None
            count = len(sizes) if max_bytes is None else _within(sizes, max_bytes)
            while True:
                rows = self._events([event_id for event_id, _ in sizes[:count]])
                built = build(rows)
                body = _body(built.payload)
                if max_bytes is None or len(body.encode()) <= max_bytes or count == 1:
                    break
                count //= 2
            batch_id = self._insert_batch(built, body, now)
            # The claimed rows are exactly the due pending ones up to the last id taken, since
            # they were taken in id order: one statement instead of one per event.
            conn.execute(
                "UPDATE events SET state = ?, batch_id = ? WHERE state = ? AND due_at <= ?"
                " AND id <= ?",
                (BATCHED, batch_id, PENDING, now, rows[-1][0]),
            )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self._keep(batch_id, built, body)
        return batch_id

    def _insert_batch(self, built: BuiltBatch, body: str, now: float) -> int:
        """A pending batch row: the events' order, not the body (rebuilt when sent), so a meta
        echoed to 100 recipients is not stored 100 times more."""
        expected = [[failure.index, failure.description] for failure in built.expected_failures]
        batch_id = self.conn.execute(
            "INSERT INTO batches (created_at, payload, expected, event_ids, bytes, event_count,"
            " next_at) VALUES (?, '', ?, ?, ?, ?, ?)",
            (
                now,
                json.dumps(expected),
                json.dumps(built.event_ids),
                len(body),
                len(built.event_ids),
                now,
            ),
        ).lastrowid
        return int(batch_id or 0)

    def _keep(self, batch_id: int, built: BuiltBatch, body: str) -> None:
        if len(self._built) < KEPT_BATCHES:
            self._built[batch_id] = (built.payload, built.expected_failures, body)

    def batch_count(self) -> int:
        """Batches ever made; a list of batch sizes is cycled by it, across restarts."""
        return int(self.conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0])

    def due_batches(self, now: float) -> Iterator[DueBatch]:
        """The batches due now, each built only when reached: a backlog is never all in RAM."""
        rows = self.conn.execute(
            "SELECT id, attempts, event_count FROM batches"
            " WHERE state = ? AND next_at <= ? ORDER BY next_at, id",
            (PENDING, now),
        ).fetchall()
        for batch_id, attempts, count in rows:
            payload, expected, body = self._payload(batch_id)
            yield DueBatch(batch_id, payload, expected, attempts, body, count)

    def _order(self, batch_id: int) -> list[int]:
        stored = self.conn.execute(
            "SELECT event_ids FROM batches WHERE id = ?", (batch_id,)
        ).fetchone()[0]
        if stored is not None:
            return [int(event_id) for event_id in json.loads(stored)]
        # A batch made by an older version: its events by id.
        rows = self.conn.execute(
            "SELECT id FROM events WHERE batch_id = ? ORDER BY id", (batch_id,)
        )
        return [row[0] for row in rows]

    def _payload(self, batch_id: int) -> tuple[dict[str, Any], tuple[ExpectedFailure, ...], str]:
        """The batch as `claim_batch` built it, or rebuilt from its events if another run did.

        The stored order is the built one (failures, then deliveries), so building it again
        without shuffling gives the same payload and the same bytes."""
        kept = self._built.get(batch_id)
        if kept is not None:
            return kept
        built = build_batch(self._events(self._order(batch_id)))
        return built.payload, built.expected_failures, _body(built.payload)

    def record_attempt(
        self,
        batch_id: int,
        status: int | None,
        error: str | None,
        body: str | None,
        problems: list[str],
        state: str,
        next_at: float,
        reason: str | None = None,
    ) -> None:
        """Store an answer and the batch's next state; a DEAD_LETTER also gets its row in
        `dead_letters` with `reason`, in the same transaction."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._attempt(batch_id, status, error, body, problems, state, next_at)
            if state == DEAD_LETTER:
                conn.execute(
                    "INSERT INTO dead_letters (batch_id, at, reason, last_status, last_body,"
                    " event_count) SELECT ?, ?, ?, ?, ?, event_count FROM batches WHERE id = ?",
                    (batch_id, time.time(), reason or "", status, body, batch_id),
                )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        if state != PENDING:
            self._built.pop(batch_id, None)

    def _attempt(
        self,
        batch_id: int,
        status: int | None,
        error: str | None,
        body: str | None,
        problems: list[str],
        state: str,
        next_at: float,
    ) -> None:
        self.conn.execute(
            "INSERT INTO attempts (batch_id, at, status, error, body, problems)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (batch_id, time.time(), status, error, body, json.dumps(problems)),
        )
        self.conn.execute(
            "UPDATE batches SET state = ?, attempts = attempts + 1, next_at = ?, last_status = ?,"
            " problems = ? WHERE id = ?",
            (state, next_at, status, json.dumps(problems), batch_id),
        )

    def split_batch(
        self, batch_id: int, status: int, body: str | None, problems: list[str], now: float
    ) -> tuple[int, int]:
        """Answer a batch with SPLIT: its events, in order, become two new pending batches (the
        halves, due now); the parent keeps its attempts and is marked split. Returns the ids."""
        order = self._order(batch_id)
        if len(order) < 2:
            raise SpoolError(f"batch {batch_id} has {len(order)} event(s): nothing to split")
        half = len(order) // 2
        halves = []
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._attempt(batch_id, status, None, body, problems, SPLIT, now)
            for part in (order[:half], order[half:]):
                built = build_batch(self._events(part))
                child = self._insert_batch(built, _body(built.payload), now)
                marks = ",".join("?" * len(part))
                conn.execute(
                    f"UPDATE events SET batch_id = ? WHERE id IN ({marks})", (child, *part)
                )
                halves.append(child)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self._built.pop(batch_id, None)
        return halves[0], halves[1]

    def next_due(self) -> tuple[float | None, float | None]:
        """Earliest due time of a pending event and of a pending batch: the dispatcher's sleep."""
        event = self.conn.execute(
            "SELECT MIN(due_at) FROM events WHERE state = ?", (PENDING,)
        ).fetchone()[0]
        batch = self.conn.execute(
            "SELECT MIN(next_at) FROM batches WHERE state = ?", (PENDING,)
        ).fetchone()[0]
        return event, batch

    def stats(self) -> dict[str, int]:
        """Counts by table and state, every state present (0 when none): what tests and the
        listing poll. `outstanding` comes from the same counts, so a caller that waits for it to
        reach 0 reads the terminal states of that moment, not of a later query."""
        result = {
            "messages": self.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0],
            "attempts": self.conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0],
            "dead_letters": self.conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0],
        }
        for state in (PENDING, BATCHED):
            result[f"events_{state}"] = 0
        for state in BATCH_STATES:
            result[f"batches_{state}"] = 0
        for table in ("events", "batches"):
            for state, count in self.conn.execute(
                f"SELECT state, COUNT(*) FROM {table} GROUP BY state"
            ):
                result[f"{table}_{state}"] = count
        result["outstanding"] = result[f"events_{PENDING}"] + result[f"batches_{PENDING}"]
        return result

    def outstanding(self) -> int:
        """Events not yet in a batch plus batches not yet answered: 0 means all sent."""
        events = self.conn.execute(
            "SELECT COUNT(*) FROM events WHERE state = ?", (PENDING,)
        ).fetchone()[0]
        batches = self.conn.execute(
            "SELECT COUNT(*) FROM batches WHERE state = ?", (PENDING,)
        ).fetchone()[0]
        return int(events + batches)

    def messages(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first; `authentication_results` and `auth` are None unless the scenario has an
        [authentication] table."""
        rows = self.conn.execute(
            "SELECT id, received_at, peer, mail_from, recipients, meta, size,"
            " authentication_results, auth FROM messages ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {
                "id": row[0],
                "received_at": row[1],
                "peer": row[2],
                "mail_from": row[3],
                "recipients": json.loads(row[4]),
                "meta": row[5],
                "size": row[6],
                "authentication_results": row[7],
                "auth": None if row[8] is None else json.loads(row[8]),
            }
            for row in rows
        ]

    def batches(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, created_at, event_count, bytes, state, attempts, last_status, problems"
            " FROM batches ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {
                "id": row[0],
                "created_at": row[1],
                "payload": self._payload(row[0])[0],
                "event_count": row[2],
                "bytes": row[3],
                "state": row[4],
                "attempts": row[5],
                "last_status": row[6],
                "problems": json.loads(row[7]),
            }
            for row in rows
        ]

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """Batches no receiver will take, newest first, with why and the receiver's last answer;
        `event_ids` lets an operator find each event (and its message) in the spool."""
        rows = self.conn.execute(
            "SELECT id, batch_id, at, reason, last_status, last_body, event_count FROM dead_letters"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        keys = ("id", "batch_id", "at", "reason", "last_status", "last_body", "event_count")
        return [
            {**dict(zip(keys, row, strict=True)), "event_ids": self._order(row[1])} for row in rows
        ]

    def attempts(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, batch_id, at, status, error, body, problems FROM attempts"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        keys = ("id", "batch_id", "at", "status", "error", "body", "problems")
        return [
            {**dict(zip(keys, row, strict=True)), "problems": json.loads(row[6])} for row in rows
        ]

    def message_details(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """What the dashboard shows beside each listed message: the meta header as it arrived,
        the meta echoed, and each recipient's outcome with why it was chosen (its events,
        duplicates left out). Kept apart from `messages()` so that listing stays as it was."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        details: dict[int, dict[str, Any]] = {
            row[0]: {"raw_meta": row[1], "echo": row[2], "outcomes": []}
            for row in self.conn.execute(
                f"SELECT id, raw_meta, echo FROM messages WHERE id IN ({marks})", ids
            )
        }
        for row in self.conn.execute(
            "SELECT message_id, email, type, description, why, mutation, state, batch_id"
            f" FROM events WHERE dup_of IS NULL AND message_id IN ({marks}) ORDER BY id",
            ids,
        ):
            keys = ("email", "type", "description", "why", "mutation", "state", "batch_id")
            details[row[0]]["outcomes"].append(dict(zip(keys, row[1:], strict=True)))
        return details

    def refusals(self, limit: int = 100) -> list[dict[str, Any]]:
        """SMTP stages a fault answered, newest first: mail the ESP never accepted, and why."""
        rows = self.conn.execute(
            "SELECT id, at, stage, addresses, action, reply, why FROM refusals"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        keys = ("id", "at", "stage", "addresses", "action", "reply", "why")
        return [
            {**dict(zip(keys, row, strict=True)), "addresses": json.loads(row[3])} for row in rows
        ]

    def next_attempts(self, ids: list[int]) -> dict[int, float]:
        """When each pending batch of `ids` is next tried: the dashboard's timeline."""
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            f"SELECT id, next_at FROM batches WHERE state = ? AND id IN ({marks})",
            (PENDING, *ids),
        )
        return {row[0]: row[1] for row in rows}

    def clear(self) -> dict[str, int]:
        """Empty every table in one transaction (a reset between tests); the rows removed.

        The caller makes sure no delivery is in flight (`Dispatcher.held`): a batch answered
        after the reset would otherwise record an attempt for a batch that no longer exists.
        """
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            removed = {table: conn.execute(f"DELETE FROM {table}").rowcount for table in TABLES}
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self._built.clear()
        return removed
