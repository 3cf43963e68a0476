"""The projection engine: event rows derived from the log, read-your-writes, restarts, limits.

The behaviour tests run on both implementations (`backend`); the ones about SQLite's own
mechanics (parameter limits, the in-memory handoff, pre-projection files) on SQLite alone.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_impl.receiver.projection import _TALLY, HANDOFF_LIMIT
from reference_impl.receiver.store import SQLiteStore, Store
from tests.reference_impl.receiver.conftest import Backend
from tests.reference_impl.receiver.logged import body, record


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "store.sqlite3")
    yield opened
    opened.close()


def test_a_read_catches_up_to_its_own_start_and_no_further(store: Store) -> None:
    """A read must not wait for a flood to end: callbacks logged while it catches up are left
    to the next read or the background thread."""
    store.projection.stop()
    record(store, body(("spam", "a@example.com")))
    project = store.projection.project
    steps: list[int] = []

    def step_while_callbacks_keep_arriving(limit: int, **kwargs: int) -> int:
        steps.append(limit)
        if len(steps) < 50:
            record(store, body(("spam", f"late{len(steps)}@example.com")))
        return project(limit, **kwargs)

    store.projection.project = step_while_callbacks_keep_arriving  # type: ignore[method-assign]
    store.projection.catch_up()
    assert len(steps) == 1


def test_low_sqlite_parameter_limit_still_projects_whole_batches(
    sqlite_store: SQLiteStore,
) -> None:
    """SQLite before 3.32 binds at most 999 parameters: the multi-row inserts must fit."""
    store = sqlite_store
    store.projection.stop()
    store._connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    record(store, body(*[("spam", f"u{i}@example.com") for i in range(1000)]))
    assert store.counts()["events"] == 1000


def test_reads_see_every_event_committed_before_them(store: Store) -> None:
    """Read-your-writes: the projection is never observed half-done."""
    for n in range(5):
        record(store, body(*[("spam", f"u{n}-{i}@example.com") for i in range(300)]))
        assert store.counts()["events"] == 300 * (n + 1)


def test_projection_resumes_after_a_restart_without_repeating_itself(backend: Backend) -> None:
    """How far it got moves in the same transaction as what it counted: the second callback,
    logged but not projected before the store closed, is counted once after it reopens (on
    PostgreSQL its event rows are written with it, and only the step counts them)."""
    first = backend.open()
    first.projection.stop()
    record(first, body(("spam", "a@example.com")))
    first.projection.catch_up()
    record(first, body(("hard_bounce", "b@example.com")))
    first.close()
    assert backend.scalar("SELECT value FROM totals WHERE name = 'events'") == 1
    reopened = backend.open()
    assert [e["type"] for e in reopened.events()] == ["spam", "hard_bounce", "hard_bounce"]
    assert reopened.counts()["events"] == 2
    reopened.close()


def test_background_projection_runs_once_callbacks_stop(store: Store, backend: Backend) -> None:
    """Without any read, the events appear shortly after the burst ends."""
    record(store, body(("spam", "a@example.com")))
    deadline = time.monotonic() + 10
    while backend.scalar("SELECT count(*) FROM events") == 0:
        assert time.monotonic() < deadline, "the projector never ran"
        time.sleep(0.02)


def test_sqlite_database_from_before_the_projection_is_not_projected_twice(
    tmp_path: Path,
) -> None:
    """An events table written by an older version starts the cursor after its last callback."""
    path = tmp_path / "older.sqlite3"
    first = SQLiteStore(path)
    record(first, body(("spam", "a@example.com")))
    first.projection.catch_up()
    first.close()
    sqlite3.connect(path, isolation_level=None).execute("DROP TABLE projection")
    assert SQLiteStore(path).counts()["events"] == 1


def test_backlog_past_the_memory_handoff_is_read_back_from_the_log(
    sqlite_store: SQLiteStore,
) -> None:
    """Past HANDOFF_LIMIT pending callbacks, the projection re-reads bodies: same events."""
    store = sqlite_store
    store.projection.stop()
    total = HANDOFF_LIMIT + 6
    for n in range(total):
        record(store, body(("spam", f"u{n}@example.com"), ("spam", f"u{n}@example.com")))
    assert store.counts()["events"] == 2 * total
    assert len(store.events()) == total


def test_a_steps_tally_reads_only_the_steps_rows_by_id(sqlite_store: SQLiteStore) -> None:
    """The report tallies are kept in each step at a cost that does not grow with the store: the
    step's new rows are found by id, not by walking an index over every event (which made the
    tally of a flood's step take 12 us per event at 800,000 events)."""
    db = sqlite_store._connection()
    plan = " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {_TALLY}", (0,)))
    assert "SEARCH events USING INTEGER PRIMARY KEY (rowid>?)" in plan, plan
    assert "SCAN events" not in plan, plan


def test_the_log_commits_synced_even_after_the_same_thread_projected(
    sqlite_store: SQLiteStore,
) -> None:
    """The 200 is sent only once the log's commit is on disk (`synchronous=FULL`). The
    projection's commits, which the log can derive again, skip that wait; the connection it used
    is the thread's own, the one its next callback is logged with, so it must be handed back
    synced, after a step and after a failed one alike."""
    store = sqlite_store
    store.projection.stop()
    db = store._connection()
    record(store, body(("spam", "a@example.com")))
    assert store.counts()["events"] == 1  # projected on this thread's connection
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
    with pytest.raises(RuntimeError), store._write(derived=True):
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1
        raise RuntimeError("the step failed")
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_the_background_thread_projects_one_callback_per_transaction(
    sqlite_store: SQLiteStore,
) -> None:
    """A step holds the write lock every callback being logged waits for: under a flood the
    thread's step is one callback, so a 200 waits for at most one callback's inserts."""
    store = sqlite_store
    store.projection.stop()
    for n in range(3):
        record(store, body(("spam", f"u{n}@example.com")))
    assert [store.projection.background_step() for _ in range(4)] == [1, 1, 1, 0]
    assert store.counts()["events"] == 3


def test_the_projection_thread_checkpoints_after_its_step_not_inside_a_commit(
    sqlite_store: SQLiteStore,
) -> None:
    """A checkpoint copies the WAL into the database file. SQLite runs its automatic one inside
    the commit that crosses its threshold, holding the write lock every callback waits for;
    the threshold is now a far safety net and the thread checkpoints after its step instead."""
    store = sqlite_store
    store.projection.stop()
    db = store._connection()
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] >= 10_000
    record(store, body(*[("spam", f"u{i}@example.com") for i in range(1000)]))
    size = store.path.stat().st_size
    assert store.projection.background_step() == 1
    assert store.path.stat().st_size > size, "the step's pages are still only in the WAL"
