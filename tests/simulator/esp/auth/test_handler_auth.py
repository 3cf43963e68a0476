"""Issue 16 at the SMTP handler, over real SMTP: what the spool records for each message.

Without `client_ip` the verdicts use the connection's real address; `helo` stands in for the
client's EHLO name, which SPF checks for a null sender; the stored size counts the
Authentication-Results line in front of the message; a scenario without the tables records none.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from reference_impl.receiver.server import RunningReceiver
from simulator.esp.auth.results import HEADER_NAME
from simulator.esp.server import FakeESP
from tests.simulator.esp.auth.conftest import message

pytestmark = pytest.mark.e2e

BASE = """
[outcomes]
delivered = 1.0
[callbacks]
delay = 0.0
retry_schedule = [0.05]
"""
AUTHENTICATING = (
    BASE
    + """
[authentication]
helo = "mail.sender.example"
[authentication.dns]
"mail.sender.example" = ["v=spf1 ip4:127.0.0.1 -all"]
"example.com" = ["v=spf1 ip4:192.0.2.1 -all"]
"""
)


def _send(tmp_path: Path, receiver: RunningReceiver, text: str, sender: str) -> dict:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    raw = message()
    with FakeESP(
        path, receiver.callback_url, spool=tmp_path / "s.sqlite3", tls="none", poll_seconds=0.02
    ) as esp:
        with smtplib.SMTP("127.0.0.1", esp.port, timeout=10) as client:
            client.sendmail(sender, ["reader@example.org"], raw)
        esp.wait_delivered(timeout=20, messages=1)
        (record,) = esp.reader().messages()
    record["sent_size"] = len(raw)
    return record


def test_a_null_sender_is_checked_by_the_scenario_helo_from_the_real_peer_ip(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    record = _send(tmp_path, receiver, AUTHENTICATING, "")
    assert record["auth"]["spf"] == "pass" and record["auth"]["spf_domain"] == "mail.sender.example"
    results = record["authentication_results"]
    assert "smtp.helo=mail.sender.example" in results and "dkim=none" in results
    line = f"{HEADER_NAME}: {results}\r\n"
    assert record["size"] == record["sent_size"] + len(line.encode())


def test_the_mail_from_domain_is_checked_against_the_peer_ip(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    record = _send(tmp_path, receiver, AUTHENTICATING, "news@example.com")
    assert (record["auth"]["spf"], record["auth"]["spf_domain"]) == ("fail", "example.com")
    assert record["auth"]["from_domain"] == "example.com"


def test_without_authentication_nothing_is_verified_or_recorded(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    record = _send(tmp_path, receiver, BASE, "news@example.com")
    assert record["authentication_results"] is None and record["auth"] is None
    assert record["size"] == record["sent_size"]
