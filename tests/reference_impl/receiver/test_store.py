"""The store, on both implementations (`backend`): durability, deduplication, profiles, reports."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_impl.protocol import effects
from reference_impl.protocol.payload import read_batch
from reference_impl.receiver.store import (
    _CALLBACK_STATE_READS,
    SCAN_PER_ITEM,
    TIMELINE_BUCKETS,
    RawCallback,
    SentMessage,
    SQLiteStore,
    Store,
    meta_fields,
)
from tests.reference_impl.receiver.conftest import Backend
from tests.reference_impl.receiver.logged import LABEL_COUNTERS, body, meta_for, record

FAILING_COMMIT = {
    "sqlite": "CREATE TABLE guard (ref INTEGER REFERENCES callbacks(id)"
    " DEFERRABLE INITIALLY DEFERRED);"
    "CREATE TRIGGER orphan AFTER INSERT ON callbacks BEGIN INSERT INTO guard VALUES (-1); END;",
    "postgresql": "CREATE TABLE guard (ref BIGINT REFERENCES callbacks(id)"
    " DEFERRABLE INITIALLY DEFERRED);"
    " CREATE FUNCTION orphan() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN INSERT INTO guard VALUES (-1); RETURN NEW; END $$;"
    " CREATE TRIGGER orphan AFTER INSERT ON callbacks FOR EACH ROW EXECUTE FUNCTION orphan()",
}


def test_sqlite_database_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.sqlite3")
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_committed_batch_survives_reopening_the_store(backend: Backend) -> None:
    first = backend.open()
    record(first, body(("spam", "a@example.com")))
    first.close()
    reopened = backend.open()
    assert reopened.counts()["callbacks"] == 1
    assert reopened.profile("a@example.com")["subscribed"] is False
    reopened.close()


def test_retried_event_raises_system_events_once_but_raw_log_keeps_the_retry(store: Store) -> None:
    payload = body(("hard_bounce", "a@example.com"))
    record(store, payload)
    record(store, payload)
    assert len(store.events()) == 2
    assert len(store.callbacks()) == 2
    report = store.campaign(1)
    assert report["counts"]["hard_bounce"] == 1
    assert report["duplicates_ignored"] == 1


def test_duplicate_inside_one_batch_is_applied_once(store: Store) -> None:
    record(store, body(("spam", "a@example.com"), ("spam", "a@example.com")))
    assert [e["name"] for e in store.events()] == ["Channel Unsubscribed"]


def test_same_meta_with_another_type_is_a_new_event(store: Store) -> None:
    record(store, body(("soft_bounce", "a@example.com")))
    record(store, body(("hard_bounce", "a@example.com")))
    assert [e["type"] for e in store.events()] == ["soft_bounce", "hard_bounce", "hard_bounce"]


def test_soft_bounce_keeps_profile_subscribed_and_unsubscribe_is_sticky(store: Store) -> None:
    record(store, body(("soft_bounce", "a@example.com")))
    assert store.profile("a@example.com")["subscribed"] is True
    record(store, body(("unsubscribed", "a@example.com"), ("soft_bounce", "a@example.com")))
    profile = store.profile("A@Example.com")
    assert profile["subscribed"] is False
    assert [(h["cause"], h["subscribed"]) for h in profile["history"]] == [
        ("soft_bounce", True),
        ("unsubscribed", False),
    ]


def test_failed_write_commits_nothing(store: Store, backend: Backend) -> None:
    """A fault while logging the callback rolls it back, so the 500 is honest."""
    backend.fail_inserts("callbacks")
    with pytest.raises(backend.error):
        record(store, body(("spam", "a@example.com")))
    assert backend.scalar("SELECT count(*) FROM callbacks") == 0
    assert backend.scalar("SELECT count(*) FROM events") == 0


def test_a_callback_whose_commit_fails_leaves_nothing_behind(
    store: Store, backend: Backend
) -> None:
    """A COMMIT that fails (here a deferred constraint) is rolled back: no row, nothing handed to
    the projection, and the same connection stores the next callback normally."""
    backend.execute(FAILING_COMMIT[backend.name])
    with pytest.raises(backend.error):
        record(store, body(("spam", "a@example.com")))
    assert not getattr(store.projection, "_handoff", None)
    backend.execute(
        "DROP TRIGGER orphan" + (" ON callbacks" if backend.name == "postgresql" else "")
    )
    record(store, body(("hard_bounce", "b@example.com")))
    assert [e["type"] for e in store.events()] == ["hard_bounce", "hard_bounce"]
    assert store.profile("a@example.com") is None
    assert store.profile("b@example.com") is not None
    assert store.counts()["callbacks"] == 1


def test_sent_messages_and_send_failures_feed_the_campaign_report(store: Store) -> None:
    sent = SentMessage("a@example.com", meta_for("a@example.com", 5), 5, "spring", 1, 1.0)
    store.record_sent([sent, sent])
    store.record_send_failure("b@example.com", meta_for("b@example.com", 5), "SMTP timeout", "x")
    assert store.sent_messages() == [sent]
    report = store.campaign(5)
    assert report["sent"] == 1
    assert report["counts"]["send_failed"] == 1
    (failure,) = store.events(message_id=5)
    assert failure["properties"]["Error"] == "SMTP timeout"


def test_healthz_totals_count_a_profile_once_across_projection_steps(store: Store) -> None:
    """`/healthz` counts profiles (and events, system events, callbacks, sent messages) from the
    counters kept with the writes: a profile first heard of in an earlier projection step, under
    another type and with its email in other capitals, is not a new profile; a message recorded
    as sent twice counts once; a send failure is one more system event."""
    record(store, body(("hard_bounce", "a@example.com")))
    assert store.counts()["profiles"] == 1
    record(store, body(("spam", "A@example.com"), ("spam", "b@example.com")))
    sent = SentMessage("c@example.com", meta_for("c@example.com"), 1, "spring", 1, 1.0)
    store.record_sent([sent])
    store.record_sent([sent])
    store.record_send_failure("d@example.com", meta_for("d@example.com"), "SMTP timeout", "x")
    hard_bounce, spam = (len(effects.RAISES[kind]) for kind in ("hard_bounce", "spam"))
    assert store.counts() == {
        "callbacks": 2,
        "events": 3,
        "system_events": hard_bounce + 2 * spam + 1,
        "profiles": 2,
        "sent_messages": 1,
    }
    report = store.label_report("spring")
    assert (report["sent"], report["counts"]["spam"], report["counts"]["send_failed"]) == (1, 2, 1)


def test_label_report_aggregates_all_messages_of_a_label(store: Store) -> None:
    record(store, body(("spam", "a@example.com"), ("hard_bounce", "b@example.com")))
    counts = store.label_report("spring")["counts"]
    assert (counts["spam"], counts["hard_bounce"]) == (1, 1)
    assert store.label_report("unknown") is None


def test_profile_is_the_meta_recipient_not_the_echoed_email(store: Store) -> None:
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


def test_a_store_from_before_the_counters_gets_them_counted_once(tmp_path: Path) -> None:
    """Reads never count whole tables, so a store written before the totals and tallies were kept
    gets them computed when opened, equal to what the tables hold."""
    path = tmp_path / "older.sqlite3"
    first = SQLiteStore(path)
    record(first, body(("spam", "a@example.com"), ("spam", "a@example.com")))
    record(first, body(("hard_bounce", "B@example.com")))
    expected = (first.counts(), first.campaign(1), first.label_report("spring"))
    first.close()
    raw = sqlite3.connect(path, isolation_level=None)
    raw.executescript("DROP TABLE totals; DROP TABLE tallies; DROP TABLE sent_tallies;")
    raw.close()
    reopened = SQLiteStore(path)
    assert (reopened.counts(), reopened.campaign(1), reopened.label_report("spring")) == expected
    assert expected[0]["events"] == 3


def test_a_store_from_before_the_label_counters_gets_them_counted_once(tmp_path: Path) -> None:
    """Issue 13: a label's report reads per-label counters. A store written before they were
    kept (no `label_tallies`, no `label_sent_tallies`, the label indexes on the tallies) gets
    them added up from its tallies when opened, once: opening it again, or projecting more,
    counts nothing twice."""
    path = tmp_path / "older.sqlite3"
    first = SQLiteStore(path)
    first.record_sent(
        [
            SentMessage(email, meta_for(email, message_id), message_id, "spring", 1, 1.0)
            for email, message_id in (("a@example.com", 1), ("b@example.com", 2))
        ]
    )
    record(first, body(("spam", "a@example.com"), ("spam", "a@example.com")))
    record(first, body(("hard_bounce", "B@example.com")))
    expected = first.label_report("spring")
    first.close()
    raw = sqlite3.connect(path, isolation_level=None)
    raw.executescript(
        "DROP TABLE label_tallies; DROP TABLE label_sent_tallies;"
        " CREATE INDEX tallies_label ON tallies(label);"
        " CREATE INDEX sent_tallies_label ON sent_tallies(label);"
    )
    raw.close()
    for _ in range(2):
        reopened = SQLiteStore(path)
        assert reopened.label_report("spring") == expected
        reopened.close()
    assert expected["sent"] == 2 and expected["duplicates_ignored"] == 1
    assert (expected["counts"]["spam"], expected["counts"]["hard_bounce"]) == (1, 1)
    raw = sqlite3.connect(path)
    assert [raw.execute(sql).fetchall() for sql in LABEL_COUNTERS] == [
        [("spring", "hard_bounce", 1, 0), ("spring", "spam", 1, 1)],
        [("spring", 2)],
    ]
    indexes = "SELECT name FROM sqlite_master WHERE name LIKE '%tallies_label'"
    assert raw.execute(indexes).fetchall() == [], "read by nothing, they are dropped"
    raw.close()
    again = SQLiteStore(path)
    record(again, body(("spam", "c@example.com")))
    assert again.label_report("spring")["counts"]["spam"] == 2
    again.close()


def test_reset_empties_everything_and_the_store_works_as_new(
    store: Store, backend: Backend
) -> None:
    """Issue 15: `reset` gives tests a fresh receiver: no callback, event, profile, sent message,
    send failure or count (the label counters of issue 13 included) survives, and what comes
    next is projected and counted as usual."""
    store.record_sent([SentMessage("a@example.com", meta_for("a@example.com"), 1, "spring", 1, 1)])
    record(store, body(("hard_bounce", "a@example.com")))
    store.record_send_failure("b@example.com", meta_for("b@example.com"), "5.1.1", "no such user")
    assert store.counts()["system_events"] == 3
    store.reset()
    assert store.counts() == dict.fromkeys(store.counts(), 0)
    assert store.callbacks() == [] and store.events() == []
    assert store.profile("a@example.com") is None
    assert store.campaign(1) is None and store.label_report("spring") is None
    assert store.sent_messages() == []
    assert [backend.execute(sql) for sql in LABEL_COUNTERS] == [[], []]
    record(store, body(("hard_bounce", "a@example.com")))
    assert store.counts()["events"] == 1
    assert store.campaign(1)["counts"]["hard_bounce"] == 1, "not a duplicate of the reset one"
    assert store.campaign(1)["duplicates_ignored"] == 0


def test_a_hand_over_that_arrives_after_a_reset_is_dropped(tmp_path: Path) -> None:
    """A callback committed just before a reset hands its events to the projection just after
    it; SQLite then gives its id to the next callback, which must be projected from its own body,
    not from the stale hand-over (shown failing without the generation check)."""
    store = SQLiteStore(tmp_path / "store.sqlite3")
    try:
        store.projection.stop()  # nothing projects behind the test's back
        old = body(("spam", "old@example.com"))
        before = store.projection.generation
        store.reset()
        store.projection.handed(1, read_batch(old).accepted, before)
        new = body(("soft_bounce", "new@example.com"))
        db = sqlite3.connect(store.path)
        db.execute(
            "INSERT INTO callbacks (id, received_at, body, status, response)"
            " VALUES (1, 0, ?, 200, '{}')",
            (new,),
        )
        db.commit()
        db.close()
        assert [(e["type"], e["email"]) for e in store.callback(1)["events"]] == [
            ("soft_bounce", "new@example.com")
        ]
        assert store.profile("old@example.com") is None
        assert store.profile("new@example.com")["subscribed"] is True
    finally:
        store.close()


def test_a_callback_opened_shows_each_event_decoded_with_what_it_raised(store: Store) -> None:
    sent = meta_for("a@example.com")
    store.record_sent([SentMessage("a@example.com", sent, 1, "spring", 1, 1)])
    first = record(store, body(("hard_bounce", "a@example.com"), ("spam", "b@example.com")))
    again = record(store, body(("hard_bounce", "a@example.com")))
    detail = store.callback(first)
    hard, spam = detail["events"]
    assert hard["fields"] == {
        "email": "a@example.com",
        "account_id": 9,
        "sent_at": 1730714617,
        "send_date": "20241104",
        "variant": 1,
        "label": "spring",
        "message_id": 1,
    }
    assert (hard["duplicate"], hard["attributed"]) == (False, True)
    assert [e["name"] for e in hard["system_events"]] == [
        "Notification Failed",
        "Channel Unsubscribed",
    ]
    assert (spam["attributed"], [e["name"] for e in spam["system_events"]]) == (
        False,
        ["Channel Unsubscribed"],
    )
    assert json.loads(detail["body"])["version"] == "v2"
    (retry,) = store.callback(again)["events"]
    assert retry["duplicate"] is True, "the retry raised nothing: it is the duplicate"
    assert store.callback(again + 1) is None


def test_a_callback_opened_says_of_each_event_what_the_store_says_of_it_alone(
    store: Store,
) -> None:
    """Issue 13: a callback's events' states are read for the whole callback at once (a fixed
    number of queries, not three per event), and each event still reads as the store's other
    reads say of its (meta, type) alone: first seen here or a duplicate (inside this callback,
    or of an earlier one), sent or unattributed, and the system events its first sighting
    raised, in id order. A send failure of one of its metas is not an event's system event."""
    store.record_sent([SentMessage("a@example.com", meta_for("a@example.com"), 1, "spring", 1, 1)])
    store.record_send_failure("b@example.com", meta_for("b@example.com"), "SMTP timeout", "x")
    earlier = record(store, body(("spam", "c@example.com")))
    opened = record(
        store,
        body(
            ("hard_bounce", "a@example.com"),
            ("spam", "b@example.com"),
            ("hard_bounce", "a@example.com"),
            ("spam", "c@example.com"),
            ("unsubscribed", "a@example.com"),
            ("soft_bounce", "d@example.com"),
        ),
    )
    events = store.callback(opened)["events"]
    assert [(e["type"], e["email"], e["duplicate"], e["attributed"]) for e in events] == [
        ("hard_bounce", "a@example.com", False, True),
        ("spam", "b@example.com", False, False),
        ("hard_bounce", "a@example.com", True, True),
        ("spam", "c@example.com", True, False),
        ("unsubscribed", "a@example.com", False, True),
        ("soft_bounce", "d@example.com", False, False),
    ]
    sent = {message.meta for message in store.sent_messages()}
    raised = store.events()
    for event in events:
        assert event["attributed"] == (event["meta"] in sent)
        assert event["fields"] == meta_fields(event["meta"])
        assert event["system_events"] == [
            s for s in raised if (s["meta"], s["type"]) == (event["meta"], event["type"])
        ]
    assert [[s["name"] for s in e["system_events"]] for e in events] == [
        ["Notification Failed", "Channel Unsubscribed"],
        ["Channel Unsubscribed"],
        ["Notification Failed", "Channel Unsubscribed"],
        ["Channel Unsubscribed"],
        ["Channel Unsubscribed"],
        ["Notification Failed"],
    ]
    assert events[3]["system_events"] == store.callback(earlier)["events"][0]["system_events"]


def test_a_callbacks_event_states_are_found_by_index_not_by_reading_every_event(
    tmp_path: Path,
) -> None:
    """Issue 13: opening a callback stays flat as the store grows. Its three reads find each
    (meta, type) by `events_first_seen` and each meta by the `sent_messages` key; none scans
    the events or fills the `system_events` view (joined to the pairs, SQLite filled it whole:
    650 ms for a 1000-event callback at 100,000 events)."""
    store = SQLiteStore(tmp_path / "rx.db")
    try:
        db = store._connection()
        first_seen, sent, raised = _CALLBACK_STATE_READS
        plans = [
            " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", ('[["m", "t"]]',)))
            for sql in (first_seen, sent, raised)
        ]
        assert "SEARCH e USING INDEX events_first_seen (meta=? AND type=?)" in plans[0], plans[0]
        assert "SEARCH s USING COVERING INDEX" in plans[1], plans[1]
        assert "SEARCH e USING INDEX events_first_seen (meta=? AND type=?)" in plans[2], plans[2]
        for plan in plans:
            assert "SCAN e " not in f"{plan} " and "system_events" not in plan, plan
    finally:
        store.close()


def test_profile_history_names_the_callback_that_changed_it(store: Store) -> None:
    record(store, body(("soft_bounce", "a@example.com")))
    unsubscribing = record(store, body(("unsubscribed", "a@example.com")))
    history = store.profile("a@example.com")["history"]
    assert [(h["cause"], h["subscribed"]) for h in history] == [
        ("soft_bounce", True),
        ("unsubscribed", False),
    ]
    assert history[1]["callback_id"] == unsubscribing


def test_system_events_filter_by_name_label_and_message_id(store: Store) -> None:
    record(store, body(("hard_bounce", "a@example.com"), ("soft_bounce", "b@example.com")))
    failed = store.event_page(None, None, None, 100, name="Notification Failed")
    assert sorted(e["type"] for e in failed) == ["hard_bounce", "soft_bounce"]
    assert len(store.event_page(None, 1, None, 100, label="spring")) == 3
    assert store.event_page(None, None, None, 100, label="autumn") == []
    assert store.event_page("soft_bounce", 2, None, 100) == []


def test_timeline_counts_first_seen_arrivals_by_type_in_equal_buckets(store: Store) -> None:
    for at, kind in ((100.0, "spam"), (100.0, "unsubscribed"), (400.0, "hard_bounce")):
        payload = body((kind, f"{kind}@example.com"))
        store.record_callback(RawCallback(payload, None, None, at), read_batch(payload))
    record_at = body(("spam", "spam@example.com"))
    store.record_callback(RawCallback(record_at, None, None, 400.0), read_batch(record_at))
    timeline = store.timeline(1, None)
    assert (timeline["start"], timeline["width"]) == (100.0, 10.0)
    buckets = timeline["buckets"]
    assert len(buckets) == TIMELINE_BUCKETS
    assert buckets[0]["counts"] == {"spam": 1, "unsubscribed": 1}
    assert buckets[-1]["counts"] == {"hard_bounce": 1}, "the last arrival is in the last column"
    assert sum(sum(b["counts"].values()) for b in buckets) == 3, "the retry is not an arrival"
    assert store.timeline(None, "spring") == timeline
    assert store.timeline(2, None) == {"start": None, "width": None, "buckets": []}


def test_the_latest_callback_id_is_where_a_live_feed_starts(store: Store) -> None:
    assert store.latest_callback_id() == 0
    last = record(store, body(("spam", "a@example.com")))
    assert store.latest_callback_id() == last


def test_the_feed_is_the_raw_log_without_bodies(store: Store) -> None:
    """The live feed polls often, so it reads no body: each row has the stored reply and the
    body's size, and agrees with the raw log row for row."""
    payloads = [body(("spam", "a@example.com")), body(("spam", "b@example.com"), ("x", "c@d.e"))]
    for payload in payloads:
        record(store, payload)
    feed = store.feed(0, 10)
    raw = store.callbacks()
    assert [row["bytes"] for row in feed] == [len(p) for p in payloads]
    assert [row["response"] for row in feed] == [row["response"] for row in raw]
    assert [row["id"] for row in store.feed(feed[0]["id"], 10)] == [feed[1]["id"]]


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(st.booleans(), min_size=1, max_size=15), max_size=4), st.integers(1, 4))
def test_unattributed_pages_give_every_unsent_event_once_in_log_order(
    store: Store, callbacks: list[list[bool]], limit: int
) -> None:
    """Issue 13: `/api/unattributed` reads a bounded window of events per page (at most
    `SCAN_PER_ITEM * limit`) and returns only the unattributed ones from the database; following
    `after` still yields every event whose meta was never sent, once, in log order, with pages
    of at most `limit` and a cursor that always moves on."""
    store.reset()
    expected, n = [], 0
    for sent_flags in callbacks:
        emails = [f"u{n + i}@example.com" for i in range(len(sent_flags))]
        n += len(emails)
        store.record_sent(
            [
                SentMessage(email, meta_for(email), 1, "spring", 1, 1.0)
                for email, sent in zip(emails, sent_flags, strict=True)
                if sent
            ]
        )
        record(store, body(*[("spam", email) for email in emails]))
        expected += [meta_for(e) for e, sent in zip(emails, sent_flags, strict=True) if not sent]
    seen: list[str] = []
    after, pages = 0, 0
    while True:
        page = store.unattributed(after, limit)
        pages += 1
        assert len(page.items) <= limit
        seen += [item["meta"] for item in page.items]
        if page.after is None:
            break
        assert page.after > after
        after = page.after
    assert seen == expected
    assert pages <= n // (SCAN_PER_ITEM * limit) + len(expected) // limit + 1


OLDER_CALLBACKS = """
CREATE TABLE callbacks (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    remote_addr TEXT,
    content_type TEXT,
    body BLOB NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL
)
"""


def test_sqlite_keeps_each_callbacks_body_after_its_summary_columns(tmp_path: Path) -> None:
    """Issue 13: a summary of the log (`/api/callbacks`, the live feed) reads `status` and
    `response`; in a row SQLite reaches a column only through every column before it, and a body
    of 1000 events spans about 40 overflow pages, so those columns come before the body. A store
    written with the body in the middle gets the table rebuilt once, when opened, and keeps every
    callback, reply and projected event."""
    path = tmp_path / "older.sqlite3"
    older = sqlite3.connect(path, isolation_level=None)
    older.execute(OLDER_CALLBACKS)
    payload = body(("spam", "a@example.com"))
    reply = json.dumps(read_batch(payload).reply().body)
    older.execute(
        "INSERT INTO callbacks (received_at, remote_addr, content_type, body, status, response)"
        " VALUES (5.0, '127.0.0.1', 'application/json', ?, 200, ?)",
        (payload, reply),
    )
    older.close()
    store = SQLiteStore(path)
    try:
        record(store, body(("hard_bounce", "b@example.com")))
        columns = [row[1] for row in store._connection().execute("PRAGMA table_info(callbacks)")]
        assert columns[-1] == "body" and columns.index("response") < columns.index("body")
        first, second = store.callbacks()
        assert (first["body"].encode(), first["response"]) == (payload, json.loads(reply))
        assert (first["received_at"], first["status"], first["content_type"]) == (
            5.0,
            200,
            "application/json",
        )
        assert [row["bytes"] for row in store.feed(0, 10)] == [len(payload), second["bytes"]]
        assert {e["profile"] for e in store.events()} == {"a@example.com", "b@example.com"}
        assert store.counts()["callbacks"] == 2
    finally:
        store.close()
