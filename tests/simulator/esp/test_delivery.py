"""Callback delivery end to end (PROTOCOL.md section 7): real SMTP into the fake ESP, a real HTTP
receiver answering 429, 401, 308, 413, 5xx or unreadable-JSON 400, and the spool, API and SMTP
quotas seen from outside. At least once: every event ends delivered or as a dead letter."""

from __future__ import annotations

import base64
import itertools
import json
import smtplib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.esp.api import SpoolAPI
from simulator.esp.handler import AUTH_BACKOFF_BASE, AUTH_BACKOFF_CAP, auth_delay
from simulator.esp.scenario import Scenario, load_scenario
from simulator.esp.server import FakeESP
from tests.simulator.esp.conftest import message, meta_for, send_campaign

EIGHT_MIB = 8 * 1024 * 1024
UNREADABLE = {
    "error": "Exception occurred while reading input stream",
    "TOTAL_EVENTS": 0,
    "PROCESSED_EVENTS": 0,
    "UNPROCESSED_EVENTS": [],
}


@dataclass
class Request:
    path: str
    method: str
    body: bytes
    events: list[dict[str, Any]]
    status: int = 0


Answer = tuple[int, dict[str, str], Any]


@dataclass
class Receiver:
    """A real HTTP server; `answer(request, number)` picks (status, headers, JSON or None)."""

    answer: Callable[[Request, int], Answer]
    requests: list[Request] = field(default_factory=list)

    def start(self) -> Receiver:
        outer = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                events = [e for g in json.loads(raw)["events"].values() for e in g]
                with lock:
                    request = Request(self.path, "POST", raw, events)
                    outer.requests.append(request)
                    status, headers, doc = outer.answer(request, len(outer.requests))
                    request.status = status
                if doc is None and 200 <= status < 300:
                    doc = {
                        "TOTAL_EVENTS": len(events),
                        "PROCESSED_EVENTS": len(events),
                        "UNPROCESSED_EVENTS": [],
                    }
                data = json.dumps(doc if doc is not None else {"error": "no"}).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def delivered(self) -> list[str]:
        """Recipients of the events in the requests answered 2xx."""
        return [e["email"] for r in self.requests if 200 <= r.status < 300 for e in r.events]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[[Callable[[Request, int], Answer]], Receiver]]:
    made: list[Receiver] = []

    def make(answer: Callable[[Request, int], Answer]) -> Receiver:
        made.append(Receiver(answer).start())
        return made[-1]

    yield make
    for item in made:
        item.close()


def scenario(**callbacks: Any) -> Scenario:
    """`smoke`, every outcome delivered, with the given [callbacks] settings."""
    base = load_scenario("smoke")
    return replace(
        base,
        outcomes={"delivered": 1.0},
        callbacks=replace(base.callbacks, **callbacks),
    )


def esp(sc: Scenario, url: str, **kwargs: Any) -> FakeESP:
    options: dict[str, Any] = {
        "batch_delay": 0.0,
        "poll_seconds": 0.02,
        "tls": "none",
        "retry_schedule": (0.05, 0.05, 0.05, 0.05, 0.05),
    }
    options.update(kwargs)
    return FakeESP(sc, url, **options)


def ok(request: Request, number: int) -> Answer:
    return 200, {}, None


def recipients(n: int, prefix: str = "r") -> list[str]:
    return [f"{prefix}{i}@example.com" for i in range(n)]


def test_429_with_retry_after_is_retried_and_delivered(receiver) -> None:
    """Before the fix a 429 was final: the batch was dropped. Retry-After: 0 beats a 60 s step."""
    rx = receiver(lambda r, n: (429, {"Retry-After": "0"}, None) if n == 1 else ok(r, n))
    with esp(scenario(), rx.base + "/ok", retry_schedule=(60.0,)) as fake:
        send_campaign(fake.port, ["limited@example.com"])
        stats = fake.wait_delivered(messages=1, timeout=15)
    assert [r.events[0]["email"] for r in rx.requests] == ["limited@example.com"] * 2
    assert stats["batches_delivered"] == 1 and stats["dead_letters"] == 0


def test_401_is_retried_so_a_rotated_token_loses_nothing(receiver, caplog) -> None:
    rx = receiver(lambda r, n: (401, {}, None) if n <= 2 else ok(r, n))
    with esp(scenario(), rx.base + "/ok") as fake:
        send_campaign(fake.port, recipients(3))
        stats = fake.wait_delivered(messages=3, timeout=15)
    assert sorted(rx.delivered()[-3:]) == sorted(recipients(3))
    assert stats["batches_delivered"] >= 1 and stats["dead_letters"] == 0
    assert "likely wrong or rotated" in caplog.text


def test_308_to_the_same_host_is_followed_with_method_and_body(receiver) -> None:
    def answer(request: Request, number: int) -> Answer:
        if request.path == "/old":
            return 308, {"Location": "/new-ok"}, None
        return ok(request, number)

    rx = receiver(answer)
    with esp(scenario(), rx.base + "/old") as fake:
        send_campaign(fake.port, ["moved@example.com"])
        stats = fake.wait_delivered(messages=1, timeout=15)
    old, new = rx.requests
    assert (old.path, new.path, new.method) == ("/old", "/new-ok", "POST")
    assert new.body == old.body
    assert stats["batches_delivered"] == 1


def test_413_splits_the_batch_until_every_event_is_delivered(receiver) -> None:
    rx = receiver(lambda r, n: (413, {}, None) if len(r.events) > 2 else ok(r, n))
    with esp(scenario(), rx.base + "/ok", batch_delay=0.5) as fake:
        with smtplib.SMTP("127.0.0.1", fake.port, timeout=10) as client:
            mail = message("list@example.com", meta_for("list@example.com", -1))
            client.sendmail("campaigns@platform.example", recipients(9), mail.as_bytes())
        stats = fake.wait_delivered(messages=1, timeout=15)
    accepted = [e["email"] for r in rx.requests if len(r.events) <= 2 for e in r.events]
    assert sorted(accepted) == sorted(recipients(9)), "each event delivered exactly once"
    assert stats["batches_split"] >= 1 and stats["dead_letters"] == 0


def test_a_receiver_outage_then_recovery_delivers_every_event(receiver) -> None:
    rx = receiver(lambda r, n: (503, {}, None) if n <= 4 else ok(r, n))
    with esp(scenario(batch_sizes=(2,)), rx.base + "/ok") as fake:
        send_campaign(fake.port, recipients(6))
        stats = fake.wait_delivered(messages=6, timeout=20)
    answered = [e["email"] for r in rx.requests[4:] for e in r.events]
    assert sorted(set(answered)) == sorted(recipients(6))
    assert stats["dead_letters"] == 0


def _raw_message(recipient: str, meta: str, body_bytes: int = 1000) -> bytes:
    """A message whose meta is folded over 900-byte lines, as a long header must be."""
    folded = "\r\n ".join(meta[i : i + 900] for i in range(0, len(meta), 900))
    headers = (
        f"From: campaigns@platform.example\r\nTo: {recipient}\r\nSubject: big\r\n"
        f"X-CleverTap_META: {folded}\r\n\r\n"
    )
    line = "x" * 76 + "\r\n"
    return (headers + line * (body_bytes // len(line))).encode()


def test_a_poison_message_cannot_take_other_messages_events_with_it(receiver) -> None:
    """One 300 KB meta x 40 recipients is 12 MB of callbacks; a receiver refuses bodies over
    8 MiB with 413. Before the fix the whole batch went over and 50 small messages' events
    were dropped with it; now batches stay under 1 MiB and everything arrives."""
    rx = receiver(lambda r, n: (413, {}, None) if len(r.body) > EIGHT_MIB else ok(r, n))
    small = recipients(50, "small")
    with esp(scenario(), rx.base + "/ok", batch_delay=4.0) as fake:
        with smtplib.SMTP("127.0.0.1", fake.port, timeout=30) as client:
            poison = _raw_message("x@example.com", "p" * 300_000)
            client.sendmail("campaigns@platform.example", recipients(40, "big"), poison)
            for offset, rcpt in enumerate(small):
                mail = message(rcpt, meta_for(rcpt, -100 - offset))
                client.sendmail("campaigns@platform.example", [rcpt], mail.as_bytes())
        stats = fake.wait_delivered(messages=51, timeout=60)
    assert set(small) <= set(rx.delivered())
    assert all(len(r.body) <= 1024 * 1024 for r in rx.requests)
    assert stats["dead_letters"] == 0


def test_unreadable_json_400_becomes_a_dead_letter_shown_by_the_api(receiver) -> None:
    rx = receiver(lambda r, n: (400, {}, UNREADABLE))
    with esp(scenario(), rx.base + "/cb") as fake:
        send_campaign(fake.port, ["poison@example.com"])
        stats = fake.wait_delivered(messages=1, timeout=15)
        with SpoolAPI(fake.spool_path) as api:
            (dead,) = httpx.get(api.url + "/dead-letters").json()["dead_letters"]
    assert len(rx.requests) == 1, "permanent: not retried"
    assert dead["last_status"] == 400 and "unreadable JSON" in dead["reason"]
    assert dead["event_count"] == 1 and len(dead["event_ids"]) == 1
    assert stats["dead_letters"] == 1 and stats["outstanding"] == 0


def _auth_plain(user: str, password: str) -> str:
    return "PLAIN " + base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_auth_brute_force_gets_421_and_the_connection_closed_after_3(caplog) -> None:
    with esp(
        scenario(),
        "http://127.0.0.1:9/",
        credentials={"platform": "right"},
        allow_auth_without_tls=True,
    ) as fake:
        client = smtplib.SMTP("127.0.0.1", fake.port, timeout=30)
        client.ehlo()
        codes = [client.docmd("AUTH", _auth_plain("platform", f"guess{i}"))[0] for i in range(3)]
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.docmd("AUTH", _auth_plain("platform", "guess3"))
        client.close()
        # The same address comes back: its next attempt is slowed, and the right password works.
        with smtplib.SMTP("127.0.0.1", fake.port, timeout=30) as again:
            again.ehlo()
            assert again.docmd("AUTH", _auth_plain("platform", "right"))[0] == 235
    assert codes == [535, 535, 421]
    assert "delayed" in caplog.text and "3 failed attempts on one connection" in caplog.text


def _spool_bytes(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size


def test_a_1mb_message_to_100_recipients_grows_the_spool_by_about_1mb(receiver, tmp_path) -> None:
    """Before the fix each event kept its own copy of the meta and each batch its frozen body:
    the spool grew by the meta times the recipients, twice over."""
    rx = receiver(ok)
    spool = tmp_path / "spool.sqlite3"
    with esp(scenario(), rx.base + "/ok", spool=spool) as fake:
        before = _spool_bytes(spool)
        with smtplib.SMTP("127.0.0.1", fake.port, timeout=60) as client:
            raw = _raw_message("list@example.com", "m" * 500_000, body_bytes=500_000)
            client.sendmail("campaigns@platform.example", recipients(100), raw)
        stats = fake.wait_delivered(messages=1, timeout=60)
        growth = _spool_bytes(spool) - before
    assert growth < 3 * 1024 * 1024, f"spool grew by {growth} bytes"
    assert len(rx.delivered()) == 100 and stats["batches_delivered"] == 50, "two per 1 MiB"


def test_a_message_whose_callbacks_exceed_the_quota_is_refused_with_552(receiver) -> None:
    sc = scenario()
    sc = replace(sc, smtp=replace(sc.smtp, message_quota=1024 * 1024))
    with esp(sc, "http://127.0.0.1:9/") as fake:
        with smtplib.SMTP("127.0.0.1", fake.port, timeout=30) as client:
            raw = _raw_message("list@example.com", "m" * 100_000)
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.sendmail("campaigns@platform.example", recipients(20), raw)
        assert fake.stats()["messages"] == 0
    assert refused.value.smtp_code == 552


def test_a_full_spool_answers_452_instead_of_growing(receiver) -> None:
    sc = scenario()
    sc = replace(sc, smtp=replace(sc.smtp, spool_quota=1024 * 1024))
    rx = receiver(lambda r, n: (503, {}, None))
    with esp(sc, rx.base + "/cb", retry_schedule=(60.0,)) as fake:
        codes = []
        with smtplib.SMTP("127.0.0.1", fake.port, timeout=30) as client:
            for i in range(12):
                raw = _raw_message("list@example.com", f"{i}" + "m" * 200_000)
                try:
                    client.sendmail("campaigns@platform.example", [f"u{i}@example.com"], raw)
                    codes.append(250)
                except smtplib.SMTPDataError as exc:
                    codes.append(exc.smtp_code)
    assert 250 in codes and codes[-1] == 452


def test_sessions_past_max_connections_get_421_and_a_closed_one_frees_its_slot() -> None:
    """Each open session may hold a message in memory while it arrives, so their number is what
    bounds the ESP's memory: one over `smtp.max_connections` is greeted 421 and closed."""
    sc = scenario()
    sc = replace(sc, smtp=replace(sc.smtp, max_connections=2))
    with esp(sc, "http://127.0.0.1:9/") as fake:
        first = smtplib.SMTP("127.0.0.1", fake.port, timeout=30)
        second = smtplib.SMTP("127.0.0.1", fake.port, timeout=30)
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", fake.port, timeout=30)
        assert refused.value.smtp_code == 421
        first.quit()
        second.ehlo()  # still served
        deadline = time.monotonic() + 10
        while True:  # the freed slot is counted out once the server sees the QUIT's close
            try:
                third = smtplib.SMTP("127.0.0.1", fake.port, timeout=30)
                break
            except smtplib.SMTPConnectError:
                assert time.monotonic() < deadline, "the closed session's slot was never freed"
                time.sleep(0.05)
        assert third.noop()[0] == 250
        third.quit()
        second.quit()


def test_auth_delay_grows_with_an_address_failures_up_to_a_cap() -> None:
    delays = [auth_delay(n) for n in range(12)]
    assert delays[0] == 0.0 and delays[1] == AUTH_BACKOFF_BASE
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert delays[-1] == AUTH_BACKOFF_CAP
