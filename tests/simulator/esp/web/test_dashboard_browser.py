"""Issue 15, the dashboard in a real browser (Playwright driving Debian's Chromium; skipped with
the reason where it is absent): mail sent over SMTP appears with its outcome and its callback
delivery without a reload, and a fault rate flipped on the page refuses the next message.

With `BOUNCEBACK_SCREENSHOT_DIR` set, the last test saves the page there as `esp-dashboard.png`
(docs/images/ holds the one the docs show).
"""

from __future__ import annotations

import os
import smtplib
from pathlib import Path

import pytest

from reference_impl.receiver.server import RunningReceiver
from simulator.conformance.esp_fixtures import SmtpSender
from simulator.esp.server import FakeESP

WAIT_MS = 15_000
CHAOS_REPLY = "550 5.7.1 Refused from the dashboard"
SCREENSHOT_DIR = "BOUNCEBACK_SCREENSHOT_DIR"


def test_mail_appears_with_its_outcome_and_its_delivery_without_reload(
    esp: FakeESP, page: object
) -> None:
    page.goto(esp.api_url + "/")
    page.wait_for_selector("#live.on", timeout=WAIT_MS)
    SmtpSender(esp.host, esp.port).send("bounce@example.com")
    outcome = page.wait_for_selector('[data-outcome="bounce@example.com"]', timeout=WAIT_MS)
    assert "hard_bounce" in outcome.inner_text()
    assert "address rule 'bounce@'" in outcome.inner_text()
    page.wait_for_selector(".batch.state-delivered [data-attempt]", timeout=WAIT_MS)
    attempt = page.inner_text(".batch.state-delivered [data-attempt]")
    assert "200" in attempt
    assert "X-CleverTap_META: " in page.inner_text("[data-message] pre")


def test_a_fault_rate_flipped_on_the_page_refuses_the_next_message(
    esp: FakeESP, page: object
) -> None:
    page.goto(esp.api_url + "/")
    page.wait_for_selector("#live.on", timeout=WAIT_MS)
    page.fill('input[name="faults.rcpt.rate"]', "1")
    page.fill('input[name="faults.rcpt.reply"]', CHAOS_REPLY)
    page.click("#fault-form button[type=submit]")
    page.wait_for_selector('.chip.hot[data-fault="rcpt"]', timeout=WAIT_MS)
    assert page.inner_text("#control-error") == ""
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        SmtpSender(esp.host, esp.port).send("success@example.com")
    refusal = page.wait_for_selector("#refusals [data-refusal]", timeout=WAIT_MS)
    assert CHAOS_REPLY in refusal.inner_text()
    assert "faults.rcpt.rate: 0.0 -> 1.0" in page.inner_text("#changes")


def test_a_wrong_value_on_the_page_is_named_and_changes_nothing(esp: FakeESP, page: object) -> None:
    page.goto(esp.api_url + "/")
    page.fill('input[name="outcomes.delivered"]', "0.5")
    page.click("#outcome-form button[type=submit]")
    page.wait_for_function(
        "document.getElementById('control-error').textContent.length > 0", timeout=WAIT_MS
    )
    assert "rates must sum to 1" in page.inner_text("#control-error")
    assert esp.panel is not None and esp.panel.current.outcomes["delivered"] == 1.0


def test_the_dashboard_shows_a_busy_run(
    receiver: RunningReceiver, page: object, tmp_path: Path
) -> None:
    """A run with every kind of row: deliveries, bounces, a refusal, a receiver outage with
    failed attempts and the next retry on the timeline, and the control changes that made them;
    saved as a screenshot."""
    with FakeESP(
        "ses-simulator",
        receiver.callback_url,
        tls="none",
        api_port=0,
        batch_delay=0.0,
        retry_schedule=(0.5, 1.0, 30.0),
    ) as esp:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(esp.api_url + "/")
        sender = SmtpSender(esp.host, esp.port)
        for recipient in ("success@example.com", "bounce@example.com", "complaint@example.com"):
            sender.send(recipient)
        esp.wait_delivered(messages=3)
        assert esp.panel is not None
        esp.panel.change({"faults": {"rcpt": {"rate": 1.0, "reply": CHAOS_REPLY}}}, "dashboard")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            sender.send("ooto@example.com")
        esp.panel.change(
            {"faults": {"rcpt": {"rate": 0.0}}, "delivery": {"receiver_down": True}}, "dashboard"
        )
        sender.send("unsubscribe@example.com")
        page.wait_for_function(
            "document.querySelectorAll('.batch.state-pending .mark.fail').length >= 3",
            timeout=WAIT_MS,
        )
        page.wait_for_selector(".batch.state-pending .mark.next", timeout=WAIT_MS)
        page.wait_for_selector("#refusals [data-refusal]", timeout=WAIT_MS)
        folder = Path(os.environ.get(SCREENSHOT_DIR) or tmp_path)
        page.screenshot(path=str(folder / "esp-dashboard.png"), full_page=True)
    assert (folder / "esp-dashboard.png").stat().st_size > 0
