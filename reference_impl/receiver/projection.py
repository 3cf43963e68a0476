"""The projection engine: turns the callback log into event rows, in log order, after the 200.

The log (`store.py`) holds each accepted callback verbatim; this module derives the `events` rows
from it. It runs after the 200, so an ESP's burst is acknowledged at the speed of one insert per
callback rather than one per event, and it is never observed half-done: every read first calls
`catch_up` (read-your-writes), the background thread (`projector.Projector`) projects once
callbacks stop arriving or the backlog passes its limit, and the `projection` row, updated in the
same transaction as the event rows, says how far it got, so a restart resumes where it stopped.

The first event with a given (meta, type) is the one that counts; a partial unique index makes
that a database rule. A retry is logged (an event row with `duplicate = 1`) but never counts twice.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from itertools import chain, repeat
from typing import Any

from reference_impl.protocol.meta import meta_columns
from reference_impl.protocol.payload import Accepted, PayloadRejected, read_batch
from reference_impl.receiver.projector import Projector

PROJECTION_STEP = 8
"""Callbacks projected per transaction when a read catches up, and on PostgreSQL
(`store_postgres.py`), where a step is one pipelined round trip."""
BACKGROUND_STEP = 1
"""Callbacks projected per transaction by SQLite's background thread, which runs while a flood
is being acknowledged. A step holds the one write lock the callbacks being logged wait for, so
it is one callback (about 15 to 20 ms for 1000 events): under a flood, steps of 8 held it for
150 to 650 ms and made the 200's p99 365 to 685 ms, where steps of one gave 164 to 303 ms at a
slightly better projected rate (README, "Speed"). Each step is followed by a checkpoint, which
keeps the WAL from growing by the index pages each small commit writes again; a read catching
up takes steps of `PROJECTION_STEP` and no checkpoint, as it did before."""
HANDOFF_LIMIT = 64
"""Accepted batches kept in memory for the projection (about 0.5 MB each); past this many pending,
the projection reads the bodies back from the log instead."""

_EVENT_COLUMNS = (
    "callback_id, received_at, position, grp, type, email, meta, profile, message_id, label,"
    " variant, description, duplicate"
)
_WIDTH = _EVENT_COLUMNS.count(",") + 1
_POSITION = 2
_MAX_ROWS = 256

log = logging.getLogger("bounceback.projection")

Connect = Callable[[], sqlite3.Connection]
Write = Callable[..., AbstractContextManager[sqlite3.Connection]]
"""The store's one-writer transaction; `derived=True` marks one that writes only what the log
can derive again, so its commit need not wait for the disk (the log's own commits still do)."""


def profile_key(email: str) -> str:
    """Profiles are keyed case-insensitively: `User@Example.com` and `user@example.com` are one."""
    return email.lower()


@lru_cache(maxsize=32)
def _insert_events(rows: int, first_seen: bool) -> str:
    """One statement for `rows` events, so SQLite inserts them in a single step.

    A step per event (`executemany`) hands the GIL back and forth a thousand times per batch, and
    under concurrent requests each hand-back can wait a whole switch interval. As first-seen
    events (`duplicate = 0`) the rows go in with ON CONFLICT DO NOTHING: the partial unique index
    on (meta, type) skips any event already stored, by an earlier callback or earlier in this one.
    """
    values = ",".join(["(" + ",".join("?" * (_WIDTH - 1)) + f",{int(not first_seen)})"] * rows)
    conflict = " ON CONFLICT DO NOTHING" if first_seen else ""
    return f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES {values}{conflict}"


def _chunk_sizes(count: int, most: int) -> Iterator[int]:
    """Split `count` rows into powers of two of at most `most`: few distinct statements, each
    prepared once and then reused from the connection's statement cache."""
    while count:
        rows = min(most, 1 << (count.bit_length() - 1))
        yield rows
        count -= rows


def _rows_per_statement(db: sqlite3.Connection) -> int:
    """`_MAX_ROWS`, or fewer where this SQLite binds fewer parameters (999 before 3.32)."""
    fitting = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // (_WIDTH - 1)
    return min(_MAX_ROWS, 1 << (fitting.bit_length() - 1))


def _event_rows(callback_id: int, received_at: float, accepted: Accepted) -> list[tuple[Any, ...]]:
    metas = meta_columns(accepted.metas)
    return list(
        zip(
            repeat(callback_id),
            repeat(received_at),
            accepted.positions,
            accepted.groups,
            accepted.types,
            accepted.emails,
            accepted.metas,
            map(profile_key, metas.emails),
            metas.message_ids,
            metas.labels,
            metas.variants,
            accepted.descriptions,
        )
    )


def _insert(db: sqlite3.Connection, rows: list[tuple[Any, ...]], first_seen: bool) -> None:
    done = 0
    for count in _chunk_sizes(len(rows), _rows_per_statement(db)):
        chunk = rows[done : done + count]
        db.execute(_insert_events(count, first_seen), list(chain.from_iterable(chunk)))
        done += count


def _project_events(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert a callback's events: first-seen ones, then the ones the unique index skipped.
    Each row keeps its callback's `received_at`, so a campaign's events are read in arrival
    order from one index (`events_message_received`)."""
    before = db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    changes = db.total_changes
    _insert(db, rows, first_seen=True)
    stored = db.total_changes - changes
    if stored < len(rows):
        _insert(db, _repeats(db, rows, before, stored), first_seen=False)


def _repeats(
    db: sqlite3.Connection, rows: list[tuple[Any, ...]], before: int, stored: int
) -> list[tuple[Any, ...]]:
    """The rows the first-seen insert skipped: retries, logged with `duplicate = 1`."""
    if not stored:
        return rows
    kept = {
        position
        for (position,) in db.execute("SELECT position FROM events WHERE id > ?", (before,))
    }
    return [row for row in rows if row[_POSITION] not in kept]


# NOT INDEXED keeps the step's rows found by their ids: with no statistics, SQLite otherwise
# walks the whole of `events_message` to group them without a sort, which made every step's tally
# grow with the table (8 us per event at 300k events, a third of the projection). Reading them
# back costs less than counting them in Python from the rows in memory (measured: 0.8 against
# 1.6 us per event for the counting, the upsert being the same).
_TALLY = """
    INSERT INTO tallies (message_id, label, type, first_seen, duplicates)
    SELECT message_id, label, type, sum(duplicate = 0), sum(duplicate) FROM events NOT INDEXED
    WHERE id > ?
    GROUP BY message_id, label, type
    ON CONFLICT DO UPDATE SET first_seen = first_seen + excluded.first_seen,
                              duplicates = duplicates + excluded.duplicates
"""
_LABEL_TALLY = """
    INSERT INTO label_tallies (label, type, first_seen, duplicates)
    SELECT label, type, sum(duplicate = 0), sum(duplicate) FROM events NOT INDEXED
    WHERE id > ?
    GROUP BY label, type
    ON CONFLICT DO UPDATE SET first_seen = first_seen + excluded.first_seen,
                              duplicates = duplicates + excluded.duplicates
"""
_NEW_PROFILES = """
    SELECT count(DISTINCT profile) FROM events AS e WHERE e.id > :before AND e.duplicate = 0
    AND NOT EXISTS (SELECT 1 FROM events AS o WHERE o.profile = e.profile AND o.duplicate = 0
                    AND o.id <= :before)
"""
_NEW_SYSTEM_EVENTS = """
    SELECT count(*) FROM events AS e JOIN raises AS r ON r.type = e.type
    WHERE e.id > ? AND e.duplicate = 0
"""


def add_to_totals(db: sqlite3.Connection, **amounts: int) -> None:
    """Move the counters `/healthz` reports, inside the caller's write transaction."""
    db.executemany(
        "INSERT INTO totals (name, value) VALUES (?, ?)"
        " ON CONFLICT DO UPDATE SET value = value + excluded.value",
        [(name, amount) for name, amount in amounts.items() if amount],
    )


def _tally(db: sqlite3.Connection, before: int) -> None:
    """Count the rows a step added (ids past `before`) into the report tallies (per message id
    and label, and per label) and the totals, in the step's own transaction, so a read never
    counts a whole table."""
    added = db.execute("SELECT count(*) FROM events WHERE id > ?", (before,)).fetchone()[0]
    if not added:
        return
    db.execute(_TALLY, (before,))
    db.execute(_LABEL_TALLY, (before,))
    add_to_totals(
        db,
        events=added,
        system_events=db.execute(_NEW_SYSTEM_EVENTS, (before,)).fetchone()[0],
        profiles=db.execute(_NEW_PROFILES, {"before": before}).fetchone()[0],
    )


class Projection:
    """Derives event rows from the log of one store; `connect` and `write` are the store's.

    `connect` gives this thread's connection; `write` is the store's one-writer transaction, so
    projecting and logging never hold SQLite's write lock at the same time.
    """

    def __init__(self, connect: Connect, write: Write) -> None:
        self._connect = connect
        self._write = write
        self._lock = threading.Lock()
        self._projecting = threading.Lock()
        self._handoff: dict[int, Accepted] = {}
        # Moved by every reset, inside its write transaction: a callback committed before a
        # reset must not hand its events to the id a later callback is given.
        self.generation = 0
        self.projector = Projector(self.background_step)

    def handed(self, callback_id: int, accepted: Accepted, generation: int) -> None:
        """A callback was committed to the log: keep its events in memory and wake the thread.

        Called only once committed: a rolled-back id may be given to the next callback. If the
        projection got there first (from the log), the next step prunes this entry. `generation`
        is what it was in the callback's write transaction; a reset since then drops the entry.
        """
        with self._lock:
            if len(self._handoff) < HANDOFF_LIMIT and generation == self.generation:
                self._handoff[callback_id] = accepted
        self.projector.recorded()

    @contextmanager
    def resetting(self) -> Iterator[sqlite3.Connection]:
        """The write transaction of a reset: no step is under way (a step gathers its events
        before it writes them), and whatever was handed over is forgotten with the log."""
        with self._projecting, self._write() as db:
            yield db
            db.execute("UPDATE projection SET callback_id = 0")
            with self._lock:
                self._handoff.clear()
                self.generation += 1

    def stop(self) -> None:
        """End the background thread after its current step; pending work stays in the log."""
        self.projector.stop()

    def catch_up(self) -> None:
        """Project every callback committed before this call; reads call this first.

        Callbacks arriving meanwhile are left to the next read or the background thread: chasing
        them could keep a read waiting for as long as a flood lasts.
        """
        row = self._connect().execute("SELECT max(id) FROM callbacks").fetchone()
        target = row[0] or 0
        while self._projected_up_to() < target and self.project(PROJECTION_STEP):
            pass

    def _projected_up_to(self) -> int:
        return self._connect().execute("SELECT callback_id FROM projection").fetchone()[0]

    def _accepted(self, callback_id: int) -> Accepted | None:
        """The callback's accepted events: handed over in memory, or read again from the log."""
        with self._lock:
            accepted = self._handoff.pop(callback_id, None)
        if accepted is not None:
            return accepted
        (body,) = (
            self._connect()
            .execute("SELECT body FROM callbacks WHERE id = ?", (callback_id,))
            .fetchone()
        )
        try:
            return read_batch(bytes(body)).accepted
        except PayloadRejected as rejected:
            log.error("callback %d no longer validates (%s): no events", callback_id, rejected)
            return None

    def background_step(self) -> int:
        """The thread's step: project, then copy the WAL into the database file.

        The checkpoint runs outside the write lock (a passive one never waits for it, and the
        callbacks being logged meanwhile do not wait for the checkpoint), where SQLite's automatic
        one would run inside the commit of whichever transaction crossed its threshold, mostly
        a projection step's, with every callback waiting.
        """
        projected = self.project(BACKGROUND_STEP)
        if projected:
            try:
                self._connect().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.OperationalError as exc:
                # The step is committed; the WAL keeps its pages until a checkpoint succeeds.
                log.warning("checkpoint after a projection step failed: %s", exc)
        return projected

    def project(self, limit: int) -> int:
        """Project up to `limit` callbacks in one transaction; return how many there were.

        The events are gathered before taking the write lock and the step is small, so callbacks
        arriving meanwhile wait for a few inserts at most. If another thread projected the same
        callbacks first, this step writes nothing. A stored body the current rules refuse
        (possible only after an upgrade changed them) yields no events and is logged; the log
        itself is never rewritten.

        One thread of this process projects at a time: a read catching up while the background
        thread is mid-step waits for that step instead of deriving the same callbacks again.
        """
        with self._projecting:
            return self._project_step(limit)

    def _project_step(self, limit: int) -> int:
        done = self._projected_up_to()
        pending = (
            self._connect()
            .execute(
                "SELECT id, received_at FROM callbacks WHERE id > ? ORDER BY id LIMIT ?",
                (done, limit),
            )
            .fetchall()
        )
        if not pending:
            self._forget_handoff(up_to=done)
            return 0
        # Decoded before the write lock, which the callbacks being acknowledged wait for.
        derived = [
            _event_rows(callback_id, received_at, accepted)
            for callback_id, received_at in pending
            if (accepted := self._accepted(callback_id)) is not None
        ]
        with self._write(derived=True) as db:
            if self._projected_up_to() != done:
                return len(pending)
            before = db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            for rows in derived:
                _project_events(db, rows)
            _tally(db, before)
            db.execute("UPDATE projection SET callback_id = ?", (pending[-1][0],))
        self._forget_handoff(up_to=pending[-1][0])
        return len(pending)

    def _forget_handoff(self, up_to: int) -> None:
        """Drop batches already projected, by this thread, another one or another process."""
        with self._lock:
            for callback_id in [key for key in self._handoff if key <= up_to]:
                del self._handoff[callback_id]
