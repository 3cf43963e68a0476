"""Delivery: retries on 5xx and timeouts with backoff, the spool as the source of truth."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from simulator.esp.delivery_policy import DEAD_LETTER, Attempt, decide
from simulator.esp.dispatcher import Dispatcher
from simulator.esp.scenario import MAILGUN_SCHEDULE, CallbackSettings
from simulator.esp.server import FakeESP
from simulator.esp.spool import KEPT_BATCHES, EventRecord, MessageRecord, SpoolReader, SpoolWriter
from simulator.protocol.payloads import SpooledEvent, build_batch
from tests.simulator.esp.conftest import send_campaign

OK_BODY = {"TOTAL_EVENTS": 0, "PROCESSED_EVENTS": 0, "UNPROCESSED_EVENTS": []}


class ScriptedReceiver:
    """A real HTTP server answering from a script of (status, delay) and recording bodies."""

    def __init__(self, script: list[tuple[int, float]]) -> None:
        self.script = list(script)
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                status, delay = outer.script.pop(0) if outer.script else (200, 0.0)
                time.sleep(delay)
                total = sum(len(g) for g in body["events"].values())
                doc = {**OK_BODY, "TOTAL_EVENTS": total, "PROCESSED_EVENTS": total}
                if status != 200:
                    doc = {"error": "Server error", **OK_BODY}
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[type[ScriptedReceiver]]:
    made: list[ScriptedReceiver] = []

    def make(script: list[tuple[int, float]]) -> ScriptedReceiver:
        made.append(ScriptedReceiver(script))
        return made[-1]

    yield make  # type: ignore[misc]
    for receiver in made:
        receiver.close()


def test_retry_delays_follow_the_schedule_with_bounded_jitter() -> None:
    rng = random.Random(0)
    for number, base in enumerate(MAILGUN_SCHEDULE, start=1):
        attempt = Attempt("http://rx/", 1, number, 0.0, status=503)
        decision = decide(attempt, MAILGUN_SCHEDULE, rng.uniform(-0.1, 0.1))
        assert decision.at is not None and 0.9 * base <= decision.at <= 1.1 * base
    spent = Attempt("http://rx/", 1, len(MAILGUN_SCHEDULE) + 1, 0.0, status=503)
    assert decide(spent, MAILGUN_SCHEDULE).action == DEAD_LETTER


def test_5xx_and_timeouts_are_retried_until_delivered_with_the_same_body(scripted) -> None:
    receiver = scripted([(500, 0.0), (503, 0.0), (200, 1.5), (200, 0.0)])
    with FakeESP(
        "smoke",
        receiver.url,
        retry_schedule=(0.05, 0.05, 0.05, 0.05),
        batch_delay=0.0,
        callback_timeout=0.5,
    ) as esp:
        send_campaign(esp.port, ["retry@example.com"])
        esp.wait_delivered(messages=1, timeout=15)
        attempts = sorted(esp.reader().attempts(), key=lambda a: a["id"])
    assert [a["status"] for a in attempts] == [500, 503, None, 200]
    assert attempts[2]["error"].startswith("timeout")
    assert all(body == receiver.bodies[0] for body in receiver.bodies)


def test_exhausted_schedule_makes_a_dead_letter(scripted) -> None:
    receiver = scripted([(500, 0.0)] * 10)
    with FakeESP("smoke", receiver.url, retry_schedule=(0.02, 0.02), batch_delay=0.0) as esp:
        send_campaign(esp.port, ["never@example.com"])
        stats = esp.wait_delivered(messages=1, timeout=10)
        (dead,) = esp.reader().dead_letters()
    assert stats["batches_dead_letter"] == 1 and stats["attempts"] == 3
    assert dead["last_status"] == 500 and "exhausted after 3" in dead["reason"]


def test_spool_writer_group_commits_and_batches_are_claimed_once(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    writer = SpoolWriter(path)
    events = (EventRecord("failed", "spam", "a@x", "m|", "d", duplicate_after=0.0),)
    record = MessageRecord("p", "f", ("a@x",), "m|", "k", 1, events)

    async def submit_all() -> list[int]:
        return list(await asyncio.gather(*(writer.submit(record) for _ in range(50))))

    assert sorted(asyncio.run(submit_all())) == list(range(1, 51))
    writer.close()
    reader = SpoolReader(path)
    assert reader.stats()["events_pending"] == 100, "each duplicate is its own event"

    def build(evs: list[SpooledEvent]):
        return build_batch(evs)

    now = time.time() + 1
    first = reader.claim_batch(60, now, build)
    second = reader.claim_batch(60, now, build)
    assert (first, second, reader.claim_batch(60, now, build)) == (1, 2, None)
    assert [b["event_count"] for b in reader.batches()] == [40, 60]
    reader.close()
    reopened = SpoolReader(path)
    assert reopened.outstanding() == 2, "batches survive a reopen until answered"
    reopened.close()


def test_commits_wake_the_dispatcher_only_when_a_batch_may_be_due(tmp_path: Path) -> None:
    """At-least-once, promptly: idle or a filled batch wakes the thread; other commits do not."""
    dispatcher = Dispatcher(
        tmp_path / "spool.sqlite3", "http://127.0.0.1:9/", CallbackSettings(), 0
    )
    dispatcher.wake(1)
    assert dispatcher._wake.is_set(), "nothing was pending: the first events start the delay"
    dispatcher._wake.clear()
    dispatcher._counted(400, 500)
    dispatcher.wake(60)
    assert not dispatcher._wake.is_set(), "the pending batch cannot be full yet"
    dispatcher.wake(40)
    assert dispatcher._wake.is_set(), "100 more events may have filled it"


def test_a_claimed_batch_is_the_same_whether_kept_or_decoded_from_the_spool(tmp_path: Path) -> None:
    """The claiming reader keeps what it built; a restarted one decodes the stored text."""
    path = tmp_path / "spool.sqlite3"
    writer = SpoolWriter(path)
    events = (
        EventRecord("failed", "spam", "a@x", "m|", "d", mutation="drop_meta", extra_keys=True),
        EventRecord("success", "delivered", "b@x", None, "ok"),
    )

    async def submit() -> int:
        return await writer.submit(MessageRecord("p", "f", ("a@x", "b@x"), "m|", "k", 1, events))

    asyncio.run(submit())
    writer.close()
    claiming, restarted = SpoolReader(path), SpoolReader(path)
    now = time.time() + 1
    claiming.claim_batch(10, now, build_batch)
    (kept,) = list(claiming.due_batches(now))
    (decoded,) = list(restarted.due_batches(now))
    # The model refuses the failed event without meta; a delivery without one it leaves open.
    assert kept == decoded and len(kept.expected) == 1
    assert kept.payload == json.loads(kept.body)
    claiming.close()
    restarted.close()


def test_batches_waiting_on_a_down_receiver_stay_on_disk(tmp_path: Path) -> None:
    """Memory stays flat while a receiver is down: the reader keeps at most KEPT_BATCHES built
    payloads, and every other pending batch is served from the spool."""
    path = tmp_path / "spool.sqlite3"
    writer = SpoolWriter(path)
    count = KEPT_BATCHES + 4
    records = [
        MessageRecord(
            "p",
            "f",
            (f"u{n}@x",),
            f"m{n}|",
            f"k{n}",
            1,
            (EventRecord("failed", "spam", f"u{n}@x", f"m{n}|", "d"),),
        )
        for n in range(count)
    ]

    async def submit() -> None:
        for record in records:
            await writer.submit(record)

    asyncio.run(submit())
    writer.close()
    reader = SpoolReader(path)
    now = time.time() + 1
    while reader.claim_batch(1, now, build_batch) is not None:
        pass
    due = list(reader.due_batches(now))
    assert len(reader._built) == KEPT_BATCHES
    assert [batch.payload for batch in due] == [json.loads(batch.body) for batch in due]
    assert len(due) == count
    reader.close()
