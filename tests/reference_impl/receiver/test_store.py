"""The SQLite store: durability, deduplication, profiles and reports, on a real file."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from reference_impl.protocol.meta import Meta, build_meta
from reference_impl.protocol.payload import read_batch
from reference_impl.receiver.store import HANDOFF_LIMIT, RawCallback, SentMessage, SQLiteStore


def meta_for(email: str, message_id: int = 1) -> str:
    return build_meta(Meta(email, 9, 1730714617, 1, "spring", message_id))


def body(*events: tuple[str, str]) -> bytes:
    failed = [{"type": kind, "email": email, "meta": meta_for(email)} for kind, email in events]
    return json.dumps({"version": "v2", "events": {"failed": failed}}).encode()


def record(store: SQLiteStore, payload: bytes) -> int:
    return store.record_callback(RawCallback(payload, "127.0.0.1", None, 0.0), read_batch(payload))


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "store.sqlite3")


def test_database_runs_in_wal_mode_with_full_sync(store: SQLiteStore) -> None:
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_committed_batch_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "durable.sqlite3"
    first = SQLiteStore(path)
    record(first, body(("spam", "a@example.com")))
    first.close()
    reopened = SQLiteStore(path)
    assert reopened.counts()["callbacks"] == 1
    assert reopened.profile("a@example.com")["subscribed"] is False


def test_retried_event_raises_system_events_once_but_raw_log_keeps_the_retry(
    store: SQLiteStore,
) -> None:
    payload = body(("hard_bounce", "a@example.com"))
    record(store, payload)
    record(store, payload)
    assert len(store.events()) == 2
    assert len(store.callbacks()) == 2
    report = store.campaign(1)
    assert report["counts"]["hard_bounce"] == 1
    assert report["duplicates_ignored"] == 1


def test_duplicate_inside_one_batch_is_applied_once(store: SQLiteStore) -> None:
    record(store, body(("spam", "a@example.com"), ("spam", "a@example.com")))
    assert [e["name"] for e in store.events()] == ["Channel Unsubscribed"]


def test_same_meta_with_another_type_is_a_new_event(store: SQLiteStore) -> None:
    record(store, body(("soft_bounce", "a@example.com")))
    record(store, body(("hard_bounce", "a@example.com")))
    assert [e["type"] for e in store.events()] == ["soft_bounce", "hard_bounce", "hard_bounce"]


def test_soft_bounce_keeps_profile_subscribed_and_unsubscribe_is_sticky(
    store: SQLiteStore,
) -> None:
    record(store, body(("soft_bounce", "a@example.com")))
    assert store.profile("a@example.com")["subscribed"] is True
    record(store, body(("unsubscribed", "a@example.com"), ("soft_bounce", "a@example.com")))
    profile = store.profile("A@Example.com")
    assert profile["subscribed"] is False
    assert [(h["cause"], h["subscribed"]) for h in profile["history"]] == [
        ("soft_bounce", True),
        ("unsubscribed", False),
    ]


def test_failed_write_commits_nothing(store: SQLiteStore) -> None:
    """A fault while logging the callback rolls it back, so the 500 is honest."""
    sqlite3.connect(store.path).execute(
        "CREATE TRIGGER fail BEFORE INSERT ON callbacks"
        " BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
    )
    with pytest.raises(sqlite3.IntegrityError):
        record(store, body(("spam", "a@example.com")))
    db = sqlite3.connect(store.path)
    assert db.execute("SELECT count(*) FROM callbacks").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def test_a_callback_whose_commit_fails_leaves_nothing_behind(store: SQLiteStore) -> None:
    """A COMMIT that fails (here a deferred constraint) is rolled back: no row, nothing handed to
    the projection, and the same connection stores the next callback normally."""
    db = sqlite3.connect(store.path)
    db.executescript(
        "CREATE TABLE guard (ref INTEGER REFERENCES callbacks(id) DEFERRABLE INITIALLY DEFERRED);"
        "CREATE TRIGGER orphan AFTER INSERT ON callbacks BEGIN INSERT INTO guard VALUES (-1); END;"
    )
    with pytest.raises(sqlite3.IntegrityError):
        record(store, body(("spam", "a@example.com")))
    assert not store._handoff
    db.execute("DROP TRIGGER orphan")
    db.commit()
    record(store, body(("hard_bounce", "b@example.com")))
    assert [e["type"] for e in store.events()] == ["hard_bounce", "hard_bounce"]
    assert store.profile("a@example.com") is None
    assert store.profile("b@example.com") is not None
    assert store.counts()["callbacks"] == 1


def test_a_read_catches_up_to_its_own_start_and_no_further(store: SQLiteStore) -> None:
    """A read must not wait for a flood to end: callbacks logged while it catches up are left
    to the next read or the background thread."""
    store._projector.stop()
    record(store, body(("spam", "a@example.com")))
    project = store._project
    steps: list[int] = []

    def step_while_callbacks_keep_arriving(limit: int) -> int:
        steps.append(limit)
        if len(steps) < 50:
            record(store, body(("spam", f"late{len(steps)}@example.com")))
        return project(limit)

    store._project = step_while_callbacks_keep_arriving  # type: ignore[method-assign]
    store.catch_up()
    assert len(steps) == 1


def test_low_sqlite_parameter_limit_still_projects_whole_batches(store: SQLiteStore) -> None:
    """SQLite before 3.32 binds at most 999 parameters: the multi-row inserts must fit."""
    store._projector.stop()
    store._connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    record(store, body(*[("spam", f"u{i}@example.com") for i in range(1000)]))
    assert store.counts()["events"] == 1000


def test_reads_see_every_event_committed_before_them(store: SQLiteStore) -> None:
    """Read-your-writes: the projection is never observed half-done."""
    for n in range(5):
        record(store, body(*[("spam", f"u{n}-{i}@example.com") for i in range(300)]))
        assert store.counts()["events"] == 300 * (n + 1)


def test_projection_resumes_after_a_restart_without_repeating_itself(tmp_path: Path) -> None:
    """The cursor moves in the same transaction as the rows it covers."""
    path = tmp_path / "resume.sqlite3"
    first = SQLiteStore(path)
    record(first, body(("spam", "a@example.com")))
    first.catch_up()
    record(first, body(("hard_bounce", "b@example.com")))
    first.close()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    reopened = SQLiteStore(path)
    assert [e["type"] for e in reopened.events()] == ["spam", "hard_bounce", "hard_bounce"]
    assert reopened.counts()["events"] == 2


def test_background_projection_runs_once_callbacks_stop(store: SQLiteStore) -> None:
    """Without any read, the events appear shortly after the burst ends."""
    record(store, body(("spam", "a@example.com")))
    raw = sqlite3.connect(store.path)
    deadline = time.monotonic() + 10
    while raw.execute("SELECT count(*) FROM events").fetchone()[0] == 0:
        assert time.monotonic() < deadline, "the projector never ran"
        time.sleep(0.02)


def test_database_from_before_the_projection_is_not_projected_twice(tmp_path: Path) -> None:
    """An events table written by an older version starts the cursor after its last callback."""
    path = tmp_path / "older.sqlite3"
    first = SQLiteStore(path)
    record(first, body(("spam", "a@example.com")))
    first.catch_up()
    first.close()
    sqlite3.connect(path, isolation_level=None).execute("DROP TABLE projection")
    assert SQLiteStore(path).counts()["events"] == 1


def test_sent_messages_and_send_failures_feed_the_campaign_report(store: SQLiteStore) -> None:
    sent = SentMessage("a@example.com", meta_for("a@example.com", 5), 5, "spring", 1, 1.0)
    store.record_sent([sent, sent])
    store.record_send_failure("b@example.com", meta_for("b@example.com", 5), "SMTP timeout", "x")
    assert store.sent_messages() == [sent]
    report = store.campaign(5)
    assert report["sent"] == 1
    assert report["counts"]["send_failed"] == 1
    (failure,) = store.events(message_id=5)
    assert failure["properties"]["Error"] == "SMTP timeout"


def test_label_report_aggregates_all_messages_of_a_label(store: SQLiteStore) -> None:
    record(store, body(("spam", "a@example.com"), ("hard_bounce", "b@example.com")))
    counts = store.label_report("spring")["counts"]
    assert (counts["spam"], counts["hard_bounce"]) == (1, 1)
    assert store.label_report("unknown") is None


def test_profile_is_the_meta_recipient_not_the_echoed_email(store: SQLiteStore) -> None:
    """The vendor sample pairs user5@ with a meta for usert5@: attribution follows the meta."""
    event = {
        "type": "hard_bounce",
        "email": "echo@example.com",
        "meta": meta_for("Meta@Example.com"),
    }
    record(store, json.dumps({"version": "v2", "events": {"failed": [event]}}).encode())
    assert store.profile("echo@example.com") is None
    assert store.profile("meta@example.com")["subscribed"] is False
    assert {e["profile"] for e in store.events()} == {"meta@example.com"}
    assert {e["properties"]["Email"] for e in store.events()} == {"echo@example.com"}


def test_backlog_past_the_memory_handoff_is_read_back_from_the_log(store: SQLiteStore) -> None:
    """Past HANDOFF_LIMIT pending callbacks, the projection re-reads bodies: same events."""
    store._projector.stop()
    total = HANDOFF_LIMIT + 6
    for n in range(total):
        record(store, body(("spam", f"u{n}@example.com"), ("spam", f"u{n}@example.com")))
    assert store.counts()["events"] == 2 * total
    assert len(store.events()) == total
