"""Issue 15 end to end: real SMTP into the fake ESP, its controls changed over HTTP while it
runs, and the reference receiver (or a slow one) taking the callbacks."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from reference_impl.receiver.server import RunningReceiver
from simulator.conformance.esp_fixtures import ESPControl, SmtpSender
from simulator.esp.dispatcher import RECEIVER_DOWN
from simulator.esp.outcomes import WHY_RATE, WHY_RULE
from simulator.esp.server import FakeESP
from tests.simulator.esp.conftest import send_campaign

CHAOS_REPLY = "550 5.7.1 Refused by a runtime fault"
QUIET_SECONDS = 1.0
"""How long a paused ESP is watched for an attempt it must not make."""


@pytest.fixture
def esp(receiver: RunningReceiver) -> Iterator[FakeESP]:
    with FakeESP(
        "ses-simulator",
        receiver.callback_url,
        tls="none",
        api_port=0,
        batch_delay=0.0,
        retry_schedule=(0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2),
        poll_seconds=0.05,
    ) as running:
        yield running


@pytest.fixture
def control(esp: FakeESP) -> ESPControl:
    return ESPControl(esp.api_url)


def test_a_fault_rate_set_over_http_refuses_the_next_message(
    esp: FakeESP, control: ESPControl
) -> None:
    sender = SmtpSender(esp.host, esp.port)
    sender.send("success@example.com")
    control.fault("rcpt", 1.0, CHAOS_REPLY)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        sender.send("success@example.com")
    code, text = refused.value.recipients["success@example.com"]
    assert f"{code} {text.decode()}" == CHAOS_REPLY
    (refusal,) = esp.reader().refusals()
    assert refusal["stage"] == "rcpt" and refusal["reply"] == CHAOS_REPLY
    assert "runtime fault rate 1" in refusal["why"]
    assert CHAOS_REPLY in httpx.get(esp.api_url + "/dashboard/state").text
    control.fault("rcpt", 0.0)
    sender.send("success@example.com")
    assert esp.wait_delivered(messages=2)["messages"] == 2


def test_paused_delivery_makes_no_attempt_until_resumed(esp: FakeESP, control: ESPControl) -> None:
    control.pause()
    send_campaign(esp.port, ["success@example.com"])
    time.sleep(QUIET_SECONDS)
    stats = esp.stats()
    assert stats["messages"] == 1 and stats["attempts"] == 0 and stats["outstanding"] == 1
    control.resume()
    stats = esp.wait_delivered(messages=1, timeout=15)
    assert stats["attempts"] == 1 and stats["batches_delivered"] == 1


def test_a_receiver_outage_fails_attempts_and_loses_nothing(
    esp: FakeESP, control: ESPControl, receiver: RunningReceiver
) -> None:
    control.receiver_down()
    send_campaign(esp.port, ["bounce@example.com"])
    deadline = time.monotonic() + 15
    while esp.stats()["attempts"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    attempts = esp.reader().attempts()
    assert len(attempts) >= 2 and {a["error"] for a in attempts} == {RECEIVER_DOWN}
    assert esp.stats()["batches_pending"] == 1, "retried on the schedule, not dropped"
    control.receiver_down(False)
    stats = esp.wait_delivered(messages=1, timeout=15)
    assert stats["batches_delivered"] == 1 and stats["dead_letters"] == 0
    assert esp.reader().attempts(1)[0]["status"] == 200


def test_outcome_rates_set_over_http_decide_the_next_message(
    esp: FakeESP, control: ESPControl
) -> None:
    control.outcomes(delivered=0.0, soft_bounce=1.0)
    send_campaign(esp.port, ["anyone@example.com", "bounce@example.com"])
    esp.wait_delivered(messages=2)
    reader = esp.reader()
    details = reader.message_details([m["id"] for m in reader.messages()])
    outcomes = {o["email"]: (o["type"], o["why"]) for d in details.values() for o in d["outcomes"]}
    assert outcomes == {
        "anyone@example.com": ("soft_bounce", WHY_RATE),
        "bounce@example.com": ("hard_bounce", WHY_RULE.format(match="bounce@")),
    }


def test_reset_empties_every_table_and_is_logged(esp: FakeESP, control: ESPControl) -> None:
    send_campaign(esp.port, ["bounce@example.com", "success@example.com"])
    control.fault("rcpt", 1.0)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        SmtpSender(esp.host, esp.port).send("x@example.com")
    esp.wait_delivered(messages=2)
    removed = control.reset()
    assert removed["messages"] == 2 and removed["refusals"] == 1 and removed["attempts"] >= 1
    assert all(value == 0 for value in esp.stats().values())
    for route, key in (("/messages", "messages"), ("/batches", "batches")):
        assert httpx.get(esp.api_url + route).json()[key] == []
    assert (
        "spool reset" in httpx.get(esp.api_url + "/api/changes").json()["changes"][0]["changes"][0]
    )
    control.fault("rcpt", 0.0)
    send_campaign(esp.port, ["success@example.com"])
    assert esp.wait_delivered(messages=1)["batches_delivered"] == 1, "works on after a reset"


class _SlowReceiver:
    """Answers each callback after `seconds`, so a reset finds a POST in flight."""

    def __init__(self, seconds: float) -> None:
        self.arrived = threading.Event()
        self.answered = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.arrived.set()
                time.sleep(seconds)
                body = b'{"TOTAL_EVENTS": 1, "PROCESSED_EVENTS": 1, "UNPROCESSED_EVENTS": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                outer.answered.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_reset_waits_for_the_post_in_flight_and_leaves_nothing_behind() -> None:
    slow = _SlowReceiver(1.0)
    try:
        with FakeESP("smoke", slow.url, tls="none", api_port=0, batch_delay=0.0) as esp:
            send_campaign(esp.port, ["someone@example.com"])
            assert slow.arrived.wait(10), "the callback never left"
            removed = ESPControl(esp.api_url).reset()
            assert slow.answered.wait(10)
            time.sleep(QUIET_SECONDS)  # time for an answer after the reset to be recorded
            assert removed["batches"] == 1
            assert all(value == 0 for value in esp.stats().values()), "no attempt after a reset"
    finally:
        slow.server.shutdown()
        slow.server.server_close()


@pytest.mark.scenario("ses-simulator")
def test_the_fixtures_expose_the_controls_and_the_reset(
    fake_esp: FakeESP, fake_esp_control: ESPControl, smtp_sender: SmtpSender
) -> None:
    smtp_sender.send("success@example.com")
    fake_esp_control.fault("data", 1.0)
    with pytest.raises(smtplib.SMTPDataError):
        smtp_sender.send("success@example.com")
    fake_esp_control.restore()
    fake_esp.wait_delivered(messages=1)
    assert fake_esp_control.reset()["messages"] == 1
    assert fake_esp.stats()["messages"] == 0
