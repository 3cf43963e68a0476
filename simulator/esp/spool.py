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
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from simulator.errors import SimulatorError
from simulator.protocol.payloads import BuiltBatch, ExpectedFailure, SpooledEvent

PENDING = "pending"
BATCHED = "batched"
DELIVERED = "delivered"
REJECTED = "rejected"
ABANDONED = "abandoned"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    peer TEXT,
    mail_from TEXT,
    recipients TEXT NOT NULL,
    meta TEXT,
    message_key TEXT NOT NULL,
    size INTEGER NOT NULL
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
    due_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    batch_id INTEGER
);
CREATE INDEX IF NOT EXISTS events_pending ON events(state, due_at, id);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    payload TEXT NOT NULL,
    expected TEXT NOT NULL,
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
"""


class SpoolError(SimulatorError, RuntimeError):
    """The spool file cannot be opened or written; the message says which file and why."""


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


@dataclass(frozen=True, slots=True)
class DueBatch:
    id: int
    payload: dict[str, Any]
    expected: tuple[ExpectedFailure, ...]
    attempts: int
    # The frozen body exactly as stored: what every attempt sends, without encoding it again.
    body: str


def connect(path: str | Path, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection with the spool's pragmas; one per thread."""
    try:
        conn = sqlite3.connect(
            str(path), timeout=30.0, isolation_level=None, check_same_thread=check_same_thread
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
    except sqlite3.Error as exc:
        raise SpoolError(f"spool {path}: cannot open ({exc}); check the path is writable") from exc
    return conn


_INSERT_MESSAGE = (
    "INSERT INTO messages (id, received_at, peer, mail_from, recipients, meta, message_key, size)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = (
    "INSERT INTO events (id, message_id, grp, type, email, meta, description, mutation,"
    " extra_keys, due_at, dup_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
            )
        )
        for event in record.events:
            row = (
                message_id,
                event.group,
                event.type,
                event.email,
                event.meta,
                event.description,
                event.mutation,
                int(event.extra_keys),
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
        self._conn: sqlite3.Connection | None = None
        connect(path).close()

    def submit(self, record: MessageRecord) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((record, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return future

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _flush(self) -> None:
        work, self._pending = self._pending, []
        if self._conn is None:
            self._conn = connect(self._path, check_same_thread=False)
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            ids = insert_messages(conn, [record for record, _ in work])
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = SpoolError(f"spool {self._path}: write failed ({exc})")
            for _, future in work:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), message_id in zip(work, ids, strict=True):
            if not future.done():
                future.set_result(message_id)
        if self._on_commit is not None:
            self._on_commit(sum(len(record.events) for record, _ in work))


# The subquery takes the ids from the index alone, so only the claimed rows are read: sorting
# whole rows read every due event's row, again for each batch claimed from a backlog.
KEPT_BATCHES = 16
"""Claimed batches whose payload the reader keeps in memory (up to 1000 events each)."""

_CLAIM = (
    "SELECT id, grp, type, email, meta, description, mutation, extra_keys FROM events"
    " WHERE id IN (SELECT id FROM events WHERE state = ? AND due_at <= ? ORDER BY id LIMIT ?)"
    " ORDER BY id"
)


class SpoolReader:
    """The dispatcher's and the listing's view of the spool, on its own connection."""

    def __init__(self, path: str | Path) -> None:
        self.conn = connect(path)
        # What `claim_batch` built, by batch id, until the batch is answered for good: the payload
        # and expectations `due_batches` would otherwise decode again from the stored text. At
        # most KEPT_BATCHES, so a receiver that stays down cannot move the spool into RAM.
        self._built: dict[int, tuple[dict[str, Any], tuple[ExpectedFailure, ...]]] = {}

    def close(self) -> None:
        self.conn.close()

    def due_events(self, now: float) -> tuple[int, float | None]:
        count, oldest = self.conn.execute(
            "SELECT COUNT(*), MIN(due_at) FROM events WHERE state = ? AND due_at <= ?",
            (PENDING, now),
        ).fetchone()
        return int(count), oldest

    def claim_batch(
        self, size: int, now: float, build: Callable[[list[SpooledEvent]], BuiltBatch]
    ) -> int | None:
        """Move up to `size` due events into a new batch with a frozen payload."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute(_CLAIM, (PENDING, now, size)).fetchall()
            if not rows:
                conn.execute("ROLLBACK")
                return None
            built = build(rows)
            expected = [[failure.index, failure.description] for failure in built.expected_failures]
            batch_id = conn.execute(
                "INSERT INTO batches (created_at, payload, expected, event_count, next_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (now, json.dumps(built.payload), json.dumps(expected), len(rows), now),
            ).lastrowid
            # The claimed rows are exactly the due pending ones up to the last id taken, since
            # they were taken in id order: one statement instead of one per event.
            conn.execute(
                "UPDATE events SET state = ?, batch_id = ? WHERE state = ? AND due_at <= ?"
                " AND id <= ?",
                (BATCHED, batch_id, PENDING, now, rows[-1][0]),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        batch_id = int(batch_id or 0)
        if len(self._built) < KEPT_BATCHES:
            self._built[batch_id] = (built.payload, built.expected_failures)
        return batch_id

    def batch_count(self) -> int:
        """Batches ever made; a list of batch sizes is cycled by it, across restarts."""
        return int(self.conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0])

    def due_batches(self, now: float) -> list[DueBatch]:
        rows = self.conn.execute(
            "SELECT id, payload, expected, attempts FROM batches"
            " WHERE state = ? AND next_at <= ? ORDER BY next_at, id",
            (PENDING, now),
        ).fetchall()
        return [
            DueBatch(row[0], *self._payload(row[0], row[1], row[2]), attempts=row[3], body=row[1])
            for row in rows
        ]

    def _payload(
        self, batch_id: int, payload: str, expected: str
    ) -> tuple[dict[str, Any], tuple[ExpectedFailure, ...]]:
        """The batch as `claim_batch` built it, or decoded from the spool if another run did."""
        built = self._built.get(batch_id)
        if built is not None:
            return built
        failures = tuple(ExpectedFailure(index, text) for index, text in json.loads(expected))
        return json.loads(payload), failures

    def record_attempt(
        self,
        batch_id: int,
        status: int | None,
        error: str | None,
        body: str | None,
        problems: list[str],
        state: str,
        next_at: float,
    ) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO attempts (batch_id, at, status, error, body, problems)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (batch_id, time.time(), status, error, body, json.dumps(problems)),
        )
        conn.execute(
            "UPDATE batches SET state = ?, attempts = attempts + 1, next_at = ?, last_status = ?,"
            " problems = ? WHERE id = ?",
            (state, next_at, status, json.dumps(problems), batch_id),
        )
        conn.execute("COMMIT")
        if state != PENDING:
            self._built.pop(batch_id, None)

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
        }
        for state in (PENDING, BATCHED):
            result[f"events_{state}"] = 0
        for state in (PENDING, DELIVERED, REJECTED, ABANDONED):
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
        rows = self.conn.execute(
            "SELECT id, received_at, peer, mail_from, recipients, meta, size FROM messages"
            " ORDER BY id DESC LIMIT ?",
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
            }
            for row in rows
        ]

    def batches(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, created_at, payload, event_count, state, attempts, last_status, problems"
            " FROM batches ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {
                "id": row[0],
                "created_at": row[1],
                "payload": json.loads(row[2]),
                "event_count": row[3],
                "state": row[4],
                "attempts": row[5],
                "last_status": row[6],
                "problems": json.loads(row[7]),
            }
            for row in rows
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
