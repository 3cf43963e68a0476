"""End to end through real sockets: SMTP in, v2 callbacks out, the reference receiver as judge."""

from __future__ import annotations

import asyncio
import json
import smtplib
import socket
import time
from collections import Counter

import aiosmtplib
import pytest

from reference_impl.receiver.server import running_receiver
from simulator.esp.outcomes import Decider
from simulator.esp.scenario import load_scenario
from simulator.esp.server import FakeESP
from tests.simulator.esp.conftest import (
    FAST_RETRIES,
    assert_each_event_once,
    expected_outcomes,
    get_json,
    message,
    meta_for,
    read_all,
    send_campaign,
)

pytestmark = pytest.mark.e2e


def test_smoke_scenario_every_event_arrives_once_for_the_right_profile(receiver) -> None:
    recipients = [f"user{i}@example.com" for i in range(40)]
    with FakeESP(
        "smoke", receiver.callback_url, seed=7, batch_delay=0.05, poll_seconds=0.02
    ) as esp:
        metas = send_campaign(esp.port, recipients)
        stats = esp.wait_delivered(messages=len(recipients))
        attempts = esp.reader().attempts()
    assert stats["events_batched"] == len(recipients)
    assert all(a["status"] == 200 and a["problems"] == [] for a in attempts)
    outcomes = expected_outcomes("smoke", 7, metas)
    assert set(outcomes.values()) - {"delivered"}, "seed 7 should give a few bounces"
    assert_each_event_once(receiver, outcomes)
    for offset, rcpt in enumerate(recipients):
        report = get_json(receiver, f"/api/campaigns/{-17005000 - offset}")
        assert report["counts"][outcomes[rcpt]] == 1


def test_mixed_scenario_over_concurrent_aiosmtplib_sessions(receiver) -> None:
    """Twenty-ish messages over five concurrent aiosmtplib sessions all come back once."""
    recipients = [f"person{i}@example.org" for i in range(60)]
    metas = {rcpt: meta_for(rcpt, -18000000 - i) for i, rcpt in enumerate(recipients)}

    async def session(port: int, chunk: list[str]) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        async with client:
            for rcpt in chunk:
                await client.send_message(message(rcpt, metas[rcpt]))

    async def drive(port: int) -> None:
        await asyncio.gather(*(session(port, recipients[i::5]) for i in range(5)))

    with FakeESP(
        "mixed", receiver.callback_url, seed=3, batch_delay=0.05, poll_seconds=0.02
    ) as esp:
        asyncio.run(drive(esp.port))
        esp.wait_delivered(messages=len(recipients))
        problems = [p for a in esp.reader().attempts() for p in a["problems"]]
    assert problems == []
    assert_each_event_once(receiver, expected_outcomes("mixed", 3, metas))


def test_same_scenario_seed_and_mail_give_the_same_callbacks(receiver, tmp_path) -> None:
    recipients = [f"again{i}@example.com" for i in range(25)]
    payloads = []
    for run in range(2):
        with FakeESP(
            "partial-failure",
            receiver.callback_url,
            seed=11,
            spool=tmp_path / f"run{run}.sqlite3",
            batch_delay=0.3,
            poll_seconds=0.02,
        ) as esp:
            send_campaign(esp.port, recipients)
            esp.wait_delivered(messages=len(recipients))
            events = [e for b in esp.reader().batches() for e in b["payload"]["events"]["failed"]]
        payloads.append(sorted(map(repr, events)))
    assert payloads[0] == payloads[1]


def test_ses_simulator_rules_ignore_label_and_domain(receiver) -> None:
    cases = {
        "success@a.example": "delivered",
        "bounce+campaign7@b.example": "hard_bounce",
        "ooto@c.example": "soft_bounce",
        "Complaint@d.example": "spam",
        "suppressionlist+x@e.example": "hard_bounce",
        "unsubscribe@f.example": "unsubscribed",
        "someone@g.example": "delivered",
    }
    with FakeESP(
        "ses-simulator", receiver.callback_url, batch_delay=0.05, poll_seconds=0.02
    ) as esp:
        send_campaign(esp.port, list(cases))
        esp.wait_delivered(messages=len(cases))
        sent = [
            e for b in esp.reader().batches() for g in b["payload"]["events"].values() for e in g
        ]
    assert {e["email"]: e["type"] for e in sent} == cases
    assert_each_event_once(receiver, cases)


def test_partial_failure_unprocessed_events_are_exactly_the_mutated_ones(receiver) -> None:
    recipients = [f"neg{i}@example.net" for i in range(60)]
    with FakeESP(
        "partial-failure", receiver.callback_url, seed=5, batch_delay=0.1, poll_seconds=0.02
    ) as esp:
        send_campaign(esp.port, recipients)
        esp.wait_delivered(messages=len(recipients))
        attempts = esp.reader().attempts()
        batches = esp.reader().batches()
    assert attempts and all(a["status"] == 200 and a["problems"] == [] for a in attempts)
    unprocessed = sum(len(json.loads(a["body"])["UNPROCESSED_EVENTS"]) for a in attempts)
    assert unprocessed > 0, "the scenario must actually break some events"
    extra = [e for b in batches for e in b["payload"]["events"]["failed"] if "x_esp_event_id" in e]
    assert extra, "some events carry extra keys, which the receiver must ignore"


def test_retry_storm_duplicates_and_reordering_raise_each_event_once(receiver) -> None:
    recipients = [f"storm{i}@example.com" for i in range(40)]
    with FakeESP("retry-storm", receiver.callback_url, seed=2, poll_seconds=0.02) as esp:
        metas = send_campaign(esp.port, recipients)
        esp.wait_delivered(messages=len(recipients))
        sent = Counter(
            e["meta"]
            for b in esp.reader().batches()
            for g in b["payload"]["events"].values()
            for e in g
        )
    assert max(sent.values()) == 2, "some events must have been sent twice"
    assert_each_event_once(receiver, expected_outcomes("retry-storm", 2, metas))


def test_batch_limit_1000_accepted_1001_refused_then_split_and_delivered(receiver) -> None:
    """2001 events: batch one holds 1000 (200), batch two 1001 is refused (400 `More than
    allowed events received.`) and split in halves of 500 and 501, both delivered."""
    recipients = [f"bulk{i}@example.com" for i in range(2001)]
    with FakeESP("batch-limit", receiver.callback_url, batch_delay=3.0, poll_seconds=0.02) as esp:
        with smtplib.SMTP("127.0.0.1", esp.port, timeout=30) as client:
            for start in range(0, len(recipients), 500):
                chunk = recipients[start : start + 500]
                mail = message("list@example.com", meta_for("list@example.com", -1))
                client.sendmail("campaigns@platform.example", chunk, mail.as_bytes())
        stats = esp.wait_delivered(messages=5, timeout=30)
        batches = sorted(esp.reader().batches(), key=lambda b: b["id"])
    assert [b["event_count"] for b in batches] == [1000, 1001, 500, 501]
    assert [(b["state"], b["last_status"], b["attempts"]) for b in batches] == [
        ("delivered", 200, 1),
        ("split", 400, 1),
        ("delivered", 200, 1),
        ("delivered", 200, 1),
    ]
    assert batches[1]["problems"] == []
    assert stats["batches_split"] == 1 and stats["dead_letters"] == 0


def test_callbacks_survive_a_receiver_that_is_down_at_first(tmp_path) -> None:
    """Connection refused is retried on the schedule; once the receiver is up, all arrive."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/callback"
    with FakeESP(
        "smoke", url, retry_schedule=(0.2, 0.3, 0.5, 1, 1, 1, 1), batch_delay=0.0, poll_seconds=0.02
    ) as esp:
        metas = send_campaign(esp.port, [f"late{i}@example.com" for i in range(5)])
        deadline = time.monotonic() + 10
        while not esp.reader().attempts() and time.monotonic() < deadline:
            time.sleep(0.02)
        first = esp.reader().attempts()
        assert first and first[0]["error"].startswith("connection failed")
        with running_receiver(tmp_path / "late.sqlite3", port=port) as rx:
            esp.wait_delivered(timeout=15)
            assert_each_event_once(rx, expected_outcomes("smoke", 0, metas))


def test_a_401_is_retried_with_a_credentials_warning_then_dead_lettered(tmp_path, caplog) -> None:
    """At least once: a wrong token is retried on the schedule (it may be rotated back), warned
    about loudly, and once the schedule is spent the batch is a dead letter, not dropped."""
    with running_receiver(tmp_path / "token.sqlite3", token="right") as rx:
        url = f"{rx.url}/callback/wrong"
        with FakeESP("smoke", url, retry_schedule=FAST_RETRIES, batch_delay=0.0) as esp:
            send_campaign(esp.port, ["four@example.com"])
            esp.wait_delivered(messages=1)
            batches = esp.reader().batches()
    assert [(b["state"], b["last_status"], b["attempts"]) for b in batches] == [
        ("dead_letter", 401, len(FAST_RETRIES) + 1)
    ]
    assert "likely wrong or rotated" in caplog.text


DROPPING = """
name = "dropping"
[outcomes]
delivered = 0.5
hard_bounce = 0.5
[callbacks]
drop_rate = 0.4
delay = 0.05
"""


def test_drop_rate_loses_exactly_the_seeded_events_the_same_way_every_run(
    receiver, tmp_path
) -> None:
    """callbacks.drop_rate over real SMTP: the events never reported are exactly those the seeded
    decision drops, so the same scenario, seed and mail lose the same events each run."""
    scenario = tmp_path / "dropping.toml"
    scenario.write_text(DROPPING)
    recipients = [f"drop{i}@example.com" for i in range(30)]
    reported = []
    for run in range(2):
        with FakeESP(
            scenario,
            receiver.callback_url,
            seed=5,
            spool=tmp_path / f"run{run}.sqlite3",
            retry_schedule=FAST_RETRIES,
            poll_seconds=0.02,
        ) as esp:
            metas = send_campaign(esp.port, recipients)
            esp.wait_delivered(messages=len(recipients))
            events = [
                e
                for b in esp.reader().batches()
                for group in b["payload"]["events"].values()
                for e in group
            ]
        reported.append(sorted(e["email"] for e in events))
    decider = Decider(load_scenario(scenario), 5)
    kept = sorted(r for r in recipients if not decider.decide("meta:" + metas[r], r).dropped)
    assert reported[0] == reported[1] == kept
    assert 0 < len(kept) < len(recipients)


def _relay_folded(meta: str) -> bytes:
    """The meta header as a relay passes on a line over 998 characters: CRLF SP every 980."""
    value = meta.encode("ascii")
    chunks = [value[i : i + 980] for i in range(0, len(value), 980)]
    return b"X-CleverTap_META: " + b"\r\n ".join(chunks) + b"\r\n"


def test_a_2000_character_meta_folded_by_a_relay_reaches_the_receiver_whole(receiver) -> None:
    """Issue 11: a long meta crossing a real relay arrives folded (CRLF SP); the fake ESP removes
    the folding whitespace by default, so the receiver gets the meta whole and attributes it."""
    recipient = "bounce+relay@example.com"
    meta = meta_for(recipient, -17005999, label="c" * 1940)
    assert len(meta) >= 2000
    mail = message(recipient, None)
    raw = _relay_folded(meta) + mail.as_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    with FakeESP("ses-simulator", receiver.callback_url, batch_delay=0.0) as esp:
        with smtplib.SMTP("127.0.0.1", esp.port, timeout=10) as client:
            client.sendmail("campaigns@platform.example", [recipient], raw)
        esp.wait_delivered(messages=1)
        (batch,) = esp.reader().batches()
    (event,) = batch["payload"]["events"]["failed"]
    assert event["meta"] == meta
    assert batch["last_status"] == 200
    callbacks = read_all(receiver, "/api/callbacks", "callbacks", body="true")
    assert meta in json.dumps(callbacks)
    assert_each_event_once(receiver, {recipient: "hard_bounce"})
