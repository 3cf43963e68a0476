"""What only the PostgreSQL store has: a versioned schema upgraded in place, callbacks committed
out of id order by concurrent writers, event rows written by concurrent requests, and a clear
error for a database it cannot reach."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from reference_impl.protocol import effects
from reference_impl.protocol.payload import read_batch
from reference_impl.receiver.store import SentMessage, StoreError
from reference_impl.receiver.store_postgres import (
    MIGRATIONS,
    SCHEMA_VERSION,
    PostgresStore,
    _accepted_json,
)
from tests.postgres import Cluster
from tests.reference_impl.receiver.logged import LABEL_COUNTERS, body, meta_for, record


def _log_v1_callback(db: psycopg.Connection, payload: bytes) -> int:
    batch = read_batch(payload)
    row = db.execute(
        "INSERT INTO callbacks (received_at, body, status, response, accepted)"
        " VALUES (1.0, %s, 200, %s, %s) RETURNING id",
        (payload, json.dumps(batch.reply().body), _accepted_json(batch)),
    ).fetchone()
    return row[0]


def test_a_version_1_database_upgrades_in_place_and_keeps_its_projection(
    postgres_url: str,
) -> None:
    """Version 1 kept a cursor; the upgrade turns it into per-callback flags, so the callback
    already projected is not projected again and the one after it is."""
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(MIGRATIONS[0])
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (1)")
        first = _log_v1_callback(db, body(("spam", "a@example.com")))
        db.execute(
            "INSERT INTO events (callback_id, position, grp, type, email, meta, profile,"
            " message_id, label, variant, description, duplicate)"
            " VALUES (%s, 0, 'failed', 'spam', 'a@example.com', %s, 'a@example.com', 1,"
            " 'spring', 1, NULL, false)",
            (first, meta_for("a@example.com")),
        )
        db.execute("UPDATE projection SET callback_id = %s", (first,))
        _log_v1_callback(db, body(("spam", "a@example.com"), ("hard_bounce", "b@example.com")))
    store = PostgresStore(postgres_url)
    try:
        assert store.counts()["events"] == 3
        report = store.campaign(1)
        assert (report["counts"]["spam"], report["duplicates_ignored"]) == (1, 1)
        with psycopg.connect(postgres_url) as db:
            assert db.execute("SELECT version FROM schema_version").fetchall() == [
                (SCHEMA_VERSION,)
            ]
            assert db.execute("SELECT to_regclass('projection')").fetchone() == (None,)
    finally:
        store.close()


def _insert_event(db: psycopg.Connection, callback_id: int, email: str, duplicate: bool) -> None:
    db.execute(
        "INSERT INTO events (callback_id, position, grp, type, email, meta, profile,"
        " message_id, label, variant, description, duplicate)"
        " VALUES (%s, 0, 'failed', 'spam', %s, %s, lower(%s), 1, 'spring', 1, NULL, %s)",
        (callback_id, email, meta_for(email), email, duplicate),
    )


def test_a_version_2_database_gets_its_counters_counted_once_when_upgraded(
    postgres_url: str,
) -> None:
    """Version 3 keeps `/healthz` totals and report tallies in the projection's transaction
    instead of counting tables on every read. A version 2 database with projected callbacks,
    a callback still waiting, sent messages and a send failure upgrades in place: its counters
    are counted once, the waiting callback is then projected and counted exactly once, and every
    figure equals what the tables hold."""
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(MIGRATIONS[0])
        db.execute(MIGRATIONS[1])
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (2)")
        for kind, names in effects.RAISES.items():
            for ordinal, name in enumerate(names):
                db.execute("INSERT INTO raises VALUES (%s, %s, %s)", (kind, ordinal, name))
        first = _log_v1_callback(db, body(("spam", "a@example.com"), ("spam", "a@example.com")))
        _insert_event(db, first, "a@example.com", duplicate=False)
        _insert_event(db, first, "a@example.com", duplicate=True)
        db.execute("UPDATE callbacks SET projected = true WHERE id = %s", (first,))
        _log_v1_callback(db, body(("spam", "a@example.com"), ("spam", "B@example.com")))
        db.execute(
            "INSERT INTO sent_messages (recipient, meta, message_id, label, variant, sent_at)"
            " VALUES ('c@example.com', %s, 1, 'spring', 1, 0)",
            (meta_for("c@example.com"),),
        )
        db.execute(
            "INSERT INTO send_failures (recipient, profile, meta, message_id, label, variant,"
            " error, detail, failed_at) VALUES ('d@example.com', 'd@example.com', %s, 1,"
            " 'spring', 1, 'Bounced', 'no such user', 0)",
            (meta_for("d@example.com"),),
        )
    store = PostgresStore(postgres_url)
    try:
        with psycopg.connect(postgres_url, autocommit=True) as db:
            kept = dict(db.execute("SELECT name, value FROM totals").fetchall())
            assert kept["callbacks"] == 1, "only the projected callback is counted at upgrade"
            assert store.counts() == {
                "callbacks": 2,
                "events": 4,
                "system_events": 2 * len(effects.RAISES["spam"]) + 1,
                "profiles": 2,
                "sent_messages": 1,
            }
            query = db.execute
            assert store.counts() == {
                name: query(sql).fetchone()[0]
                for name, sql in (
                    ("callbacks", "SELECT count(*) FROM callbacks"),
                    ("events", "SELECT count(*) FROM events"),
                    ("system_events", "SELECT count(*) FROM system_events"),
                    ("profiles", "SELECT count(DISTINCT profile) FROM events WHERE NOT duplicate"),
                    ("sent_messages", "SELECT count(*) FROM sent_messages"),
                )
            }
        expected = {"sent": 1, "duplicates_ignored": 2}
        for report in (store.campaign(1), store.label_report("spring")):
            assert {key: report[key] for key in expected} == expected
            assert (report["counts"]["spam"], report["counts"]["send_failed"]) == (2, 1)
    finally:
        store.close()


def test_a_version_4_database_gets_its_label_counters_counted_once_when_upgraded(
    postgres_url: str,
) -> None:
    """Issue 13: version 5 keeps per-label counters, so a label's report reads a few rows. A
    version 4 database (made from this one: the label tables and the event page indexes dropped,
    the label indexes back, `derived` without its label counts) with a projected callback, a
    callback whose rows are written but not yet counted, and sent messages upgrades in place:
    the label counters are added up once from the tallies, the waiting callback then adds its
    own once, every figure equals what the tables hold, and version 6's indexes are made."""
    store = PostgresStore(postgres_url)
    store.projection.stop()
    store.record_sent(
        [
            SentMessage(email, meta_for(email, message_id), message_id, "spring", 1, 1.0)
            for email, message_id in (("a@example.com", 1), ("b@example.com", 2))
        ]
    )
    record(store, body(("spam", "a@example.com"), ("spam", "a@example.com")))
    store.projection.catch_up()
    record(store, body(("spam", "a@example.com"), ("hard_bounce", "B@example.com")))
    store.close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM callbacks WHERE NOT projected").fetchone() == (1,)
        db.execute(
            "DROP TABLE label_tallies, label_sent_tallies;"
            " CREATE INDEX tallies_label ON tallies(label);"
            " CREATE INDEX sent_tallies_label ON sent_tallies(label);"
            " UPDATE callbacks SET derived = derived - 'label_tallies';"
            " DROP INDEX callbacks_received, events_callback, send_failures_failed;"
            " UPDATE schema_version SET version = 4"
        )
    for _ in range(2):
        upgraded = PostgresStore(postgres_url)
        report = upgraded.label_report("spring")
        upgraded.close()
        assert (report["sent"], report["duplicates_ignored"]) == (2, 2)
        assert (report["counts"]["spam"], report["counts"]["hard_bounce"]) == (1, 1)
    with psycopg.connect(postgres_url) as db:
        assert [db.execute(sql).fetchall() for sql in LABEL_COUNTERS] == [
            [("spring", "hard_bounce", 1, 0), ("spring", "spam", 1, 2)],
            [("spring", 2)],
        ]
        indexes = "SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%%tallies_label'"
        assert db.execute(indexes).fetchone() == (0,), "read by nothing, they are dropped"
        pages = "SELECT count(*) FROM pg_indexes WHERE indexname = ANY(%s)"
        names = ["callbacks_received", "events_callback", "send_failures_failed"]
        assert db.execute(pages, (names,)).fetchone() == (3,), "version 6: event pages by index"
        assert db.execute("SELECT max(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,)


def test_opening_twice_migrates_once_and_keeps_the_data(postgres_url: str) -> None:
    first = PostgresStore(postgres_url)
    record(first, body(("spam", "a@example.com")))
    second = PostgresStore(postgres_url)
    assert second.counts()["callbacks"] == 1
    first.close()
    second.close()


def test_a_database_newer_than_this_receiver_is_refused(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        PostgresStore(postgres_url)


def test_a_callback_committed_after_a_later_id_is_still_projected(postgres_url: str) -> None:
    """Concurrent writers commit ids out of order: the projection must not skip the smaller id
    that commits last (a cursor 'projected up to id N' would)."""
    store = PostgresStore(postgres_url)
    try:
        slow = psycopg.connect(postgres_url)
        _log_v1_callback(slow, body(("spam", "slow@example.com")))
        record(store, body(("spam", "fast@example.com")))
        assert store.counts()["events"] == 1
        slow.commit()
        slow.close()
        assert store.counts()["events"] == 2
        assert store.profile("slow@example.com")["subscribed"] is False
    finally:
        store.close()


def test_concurrent_callbacks_with_the_same_events_in_opposite_orders_never_deadlock(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each request writes its callback's event rows in its own transaction, where the unique
    index decides first-seen: two writing the same (meta, type) keys in opposite orders would
    each wait for the other. The rows go in key order, so one waits for the other to commit; no
    callback falls back to leaving its events to the projection, and each event is first-seen
    once. Eight stores (as eight processes) start their inserts together, twice."""
    emails = [f"u{i}@example.com" for i in range(1000)]
    forward = body(*[("spam", email) for email in emails])
    backward = body(*[("spam", email) for email in reversed(emails)])
    stores = [PostgresStore(postgres_url) for _ in range(8)]
    together = threading.Barrier(len(stores))

    def post(n: int) -> None:
        together.wait()
        record(stores[n], forward if n % 2 else backward)

    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(2):
                with ThreadPoolExecutor(len(stores)) as pool:
                    list(pool.map(post, range(len(stores))))
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
        report = stores[0].campaign(1)
        assert (report["counts"]["spam"], report["duplicates_ignored"]) == (1000, 15 * 1000)
        assert stores[0].counts()["profiles"] == 1000
    finally:
        for store in stores:
            store.close()


def test_a_callback_whose_events_cannot_be_written_is_logged_and_derived_later(
    postgres_url: str,
) -> None:
    """The 200 needs only the log: if writing the events with the callback fails, the callback is
    committed alone, and the projection's step writes its events later, each counted once. (Its
    copy of an event written meanwhile by a later callback is then the duplicate.)"""
    store = PostgresStore(postgres_url)
    try:
        store.projection.stop()
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute("ALTER TABLE profiles RENAME TO profiles_away")
            record(store, body(("spam", "a@example.com"), ("spam", "a@example.com")))
            db.execute("ALTER TABLE profiles_away RENAME TO profiles")
        record(store, body(("spam", "a@example.com"), ("hard_bounce", "b@example.com")))
        assert store.counts() == {
            "callbacks": 2,
            "events": 4,
            "system_events": len(effects.RAISES["spam"]) + len(effects.RAISES["hard_bounce"]),
            "profiles": 2,
            "sent_messages": 0,
        }
        assert store.campaign(1)["duplicates_ignored"] == 2
        with psycopg.connect(postgres_url) as db:
            first = "SELECT callback_id FROM events WHERE type = 'spam' AND NOT duplicate"
            assert db.execute(first).fetchall() == [(2,)]
    finally:
        store.close()


def test_an_unreachable_database_is_one_clear_store_error(postgres_cluster: Cluster) -> None:
    url = postgres_cluster.url("no_such_database")
    with pytest.raises(StoreError) as raised:
        PostgresStore(url)
    message = str(raised.value)
    assert "\n" not in message
    assert "cannot open the store postgresql://postgres@127.0.0.1" in message
    assert "no_such_database" in message
