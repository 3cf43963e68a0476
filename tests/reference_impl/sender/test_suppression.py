"""Suppression (issue 16): a later campaign skips the profiles the receiver unsubscribed.

The source page: profiles that unsubscribe, mark mail as spam or hard-bounce "are automatically
unsubscribed from future communications"; a soft bounce does not unsubscribe. Everything goes
through real SMTP to the fake ESP, real callbacks into the real receiver and its SQLite file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reference_impl.cli import main
from reference_impl.receiver.server import RunningReceiver
from reference_impl.sender.campaign import Campaign
from reference_impl.sender.suppression import (
    ReceiverSuppression,
    StoreSuppression,
    unsubscribed_by,
)
from simulator.esp.server import FakeESP
from tests.reference_impl.sender.test_campaign_e2e import fake_esp, provider_for
from tests.reference_impl.sender.test_demo_cli import write_provider

pytestmark = pytest.mark.e2e

SCENARIO = """
name = "suppression"
[[rules]]
match = "hard@"
outcome = "hard_bounce"
[[rules]]
match = "spam@"
outcome = "spam"
[[rules]]
match = "unsub@"
outcome = "unsubscribed"
[[rules]]
match = "soft@"
outcome = "soft_bounce"
[callbacks]
batch_size = 1000
delay = 0.0
retry_schedule = [0.05, 0.1]
"""
AUDIENCE = [
    "hard@a.example",
    "spam@a.example",
    "unsub@a.example",
    "soft@a.example",
    "ok@a.example",
    "ok@b.example",
]
UNSUBSCRIBED = {"hard@a.example": "hard_bounce", "spam@a.example": "spam"}
UNSUBSCRIBED["unsub@a.example"] = "unsubscribed"


def first_campaign(tmp_path: Path, rx: RunningReceiver) -> None:
    """The first campaign, with every callback in the receiver before it returns."""
    with fake_esp(tmp_path, rx, SCENARIO) as esp:
        report = Campaign(provider_for(esp, tmp_path), AUDIENCE, "first", store=rx.store).run()
        assert len(report.sent) == len(AUDIENCE)
        esp.wait_delivered(timeout=20, messages=len(AUDIENCE))


def test_second_campaign_skips_hard_bounce_spam_and_unsubscribe_but_not_soft_bounce(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    first_campaign(tmp_path, receiver)
    with fake_esp(tmp_path, receiver, SCENARIO) as esp:
        report = Campaign(
            provider_for(esp, tmp_path),
            AUDIENCE,
            "second",
            store=receiver.store,
            suppression=StoreSuppression(receiver.store),
        ).run()
        esp.wait_delivered(timeout=20, messages=len(report.sent))
    assert {s.recipient: s.cause for s in report.suppressed} == UNSUBSCRIBED
    assert sorted(r.recipient for r in report.sent) == sorted(set(AUDIENCE) - set(UNSUBSCRIBED))
    assert "soft@a.example" in {r.recipient for r in report.sent}
    assert not report.failed


def test_suppression_from_the_receiver_url_matches_the_store(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    first_campaign(tmp_path, receiver)
    remote = ReceiverSuppression(receiver.url)
    try:
        causes = {email: remote.cause(email) for email in AUDIENCE}
    finally:
        remote.close()
    local = StoreSuppression(receiver.store)
    assert causes == {email: local.cause(email) for email in AUDIENCE}
    assert {k: v for k, v in causes.items() if v} == UNSUBSCRIBED


def test_send_cli_reports_suppressed_and_no_suppress_mails_everyone(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    first_campaign(tmp_path, receiver)
    args = [arg for email in AUDIENCE for arg in ("--to", email)]
    with FakeESP(tmp_path / "scenario.toml", receiver.callback_url, tls="none") as esp:
        provider = write_provider(tmp_path, esp.port)
        skipped = CliRunner().invoke(
            main, ["send", "--provider", str(provider), "--receiver-url", receiver.url, *args]
        )
        everyone = CliRunner().invoke(
            main,
            [
                "send",
                "--provider",
                str(provider),
                "--store",
                str(receiver.store.path),
                *args,
                "--no-suppress",
            ],
        )
    assert skipped.exit_code == 0, skipped.output
    assert "3 suppressed: unsubscribed at the receiver" in skipped.output
    assert "3 sent, 0 failed, 3 suppressed" in skipped.output
    assert "suppressed (hard_bounce): 1" in skipped.output
    assert everyone.exit_code == 0, everyone.output
    assert "6 sent, 0 failed, 0 suppressed" in everyone.output


def test_a_profile_never_heard_of_or_still_subscribed_is_not_suppressed() -> None:
    assert unsubscribed_by(None) is None
    soft = {"subscribed": True, "history": [{"cause": "soft_bounce", "subscribed": True}]}
    assert unsubscribed_by(soft) is None
    later = {
        "subscribed": False,
        "history": [
            {"cause": "soft_bounce", "subscribed": True},
            {"cause": "spam", "subscribed": False},
            {"cause": "hard_bounce", "subscribed": False},
        ],
    }
    assert unsubscribed_by(later) == "spam"


def test_send_refuses_to_start_when_the_receiver_cannot_say_who_unsubscribed(
    tmp_path: Path,
) -> None:
    """An unreachable receiver URL is an operator error (exit 2, one line), nothing is mailed."""
    provider = write_provider(tmp_path, 9)
    result = CliRunner().invoke(
        main,
        [
            "send",
            "--provider",
            str(provider),
            "--to",
            "a@b.example",
            "--receiver-url",
            "http://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("bounceback send: error: suppression: the receiver at")
