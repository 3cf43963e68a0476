"""What only the PostgreSQL store has: a versioned schema upgraded in place, callbacks committed
out of id order by concurrent writers, and a clear error for a database it cannot reach."""

from __future__ import annotations

import json

import psycopg
import pytest

from reference_impl.protocol.payload import read_batch
from reference_impl.receiver.store import StoreError
from reference_impl.receiver.store_postgres import (
    MIGRATIONS,
    SCHEMA_VERSION,
    PostgresStore,
    _accepted_json,
)
from tests.postgres import Cluster
from tests.reference_impl.receiver.logged import body, meta_for, record


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


def test_an_unreachable_database_is_one_clear_store_error(postgres_cluster: Cluster) -> None:
    url = postgres_cluster.url("no_such_database")
    with pytest.raises(StoreError) as raised:
        PostgresStore(url)
    message = str(raised.value)
    assert "\n" not in message
    assert "cannot open the store postgresql://postgres@127.0.0.1" in message
    assert "no_such_database" in message
