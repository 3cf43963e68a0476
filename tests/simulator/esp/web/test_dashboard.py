"""Issue 15, what the dashboard shows, rendered by its real templates from a real spool, and
from real SMTP into a scenario that verifies DKIM, SPF and DMARC."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

import httpx
import pytest
from flask import render_template

from reference_impl.receiver.server import RunningReceiver
from simulator.conformance.esp_fixtures import SmtpSender
from simulator.esp.server import FakeESP
from simulator.esp.spool import SpoolReader, connect
from simulator.esp.web.app import WebConfig, create_app
from simulator.esp.web.dashboard import clock, dashboard_state, timeline

AUTH_RESULTS = "fake-esp.bounceback.test; dkim=pass header.d=example.com; spf=pass; dmarc=pass"


def _render(spool: Path) -> str:
    app = create_app(WebConfig(spool))
    reader = SpoolReader(spool)
    try:
        state = dashboard_state(reader, app.config["ESP"], time.time())
    finally:
        reader.close()
    with app.test_request_context("/"):
        return render_template("_state.html", **state)


def _one_message(spool: Path, results: str | None = None, auth: str | None = None) -> None:
    conn = connect(spool)
    conn.execute(
        "INSERT INTO messages (id, received_at, peer, mail_from, recipients, meta, message_key,"
        " size, echo, raw_meta, authentication_results, auth) VALUES (1, 0, '127.0.0.1:1', 's@x',"
        " '[\"r@x\"]', 'm|', 'k', 9, 'm|', 'X-CleverTap_META: m|', ?, ?)",
        (results, auth),
    )
    conn.close()


def test_verification_verdicts_are_shown_when_the_spool_records_them(tmp_path: Path) -> None:
    """With a scenario's [authentication], the spool's messages carry `authentication_results`
    (RFC 8601) and `auth` (verdicts per method); the dashboard shows them, and nothing when
    absent."""
    verified, plain = tmp_path / "verified.sqlite3", tmp_path / "plain.sqlite3"
    _one_message(verified, AUTH_RESULTS, '{"dkim": "pass"}')
    _one_message(plain)
    shown = _render(verified)
    assert "Authentication-Results" in shown and "dkim=pass header.d=example.com" in shown
    assert '"dkim": "pass"' in shown and "verdicts" in shown
    plain = _render(plain)
    assert "Authentication-Results" not in plain and "verdicts" not in plain
    assert "X-CleverTap_META: m|" in plain, "the header as it arrived"


def test_the_timeline_spans_the_first_batch_to_the_last_retry() -> None:
    batches = [{"created_at": 100.0, "next_at": 400.0}, {"created_at": 50.0, "next_at": None}]
    assert timeline(batches, now=200.0) == (50.0, 400.0)
    assert timeline([], now=200.0) == (200.0, 201.0), "never an empty window"
    assert clock(0.25) == "00:00:00.250" and clock(None) == ""


def test_verdicts_and_the_rule_behind_an_outcome_or_a_refusal_are_shown(
    receiver: RunningReceiver,
) -> None:
    """Real SMTP into the shipped `bulk-sender-rules` scenario: a campaign from the authorised
    domain is accepted with its Authentication-Results and judged spam (no one-click unsubscribe),
    one from an unauthenticated domain is refused at DATA; the dashboard names each rule."""
    with FakeESP(
        "bulk-sender-rules", receiver.callback_url, tls="none", api_port=0, batch_delay=0.0
    ) as esp:
        SmtpSender(esp.host, esp.port, from_address="news@platform.example").send("r@example.com")
        with pytest.raises(smtplib.SMTPDataError):
            SmtpSender(esp.host, esp.port, from_address="x@elsewhere.example").send("r@example.com")
        esp.wait_delivered(messages=1)
        shown = httpx.get(esp.api_url + "/dashboard/state").text
    assert "Authentication-Results" in shown and "spf=pass" in shown
    assert "rule &#39;one-click-unsubscribe&#39;" in shown
    assert "rule &#39;unauthenticated&#39;" in shown and "550 5.7.26" in shown
