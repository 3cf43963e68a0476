"""Campaigns over real SMTP to the fake ESP: each scheme, AUTH, each section 6 error class.

Each test names the requirement of issue 4 it checks. Recipients such as `rcpt550_5.1.1@` and
`data451@` are the fake ESP's coded addresses (docs/simulator.md).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from reference_impl.protocol.meta import parse_meta
from reference_impl.receiver.server import RunningReceiver
from reference_impl.sender import errors as e
from reference_impl.sender.attribution import check_attribution
from reference_impl.sender.campaign import Campaign, CampaignReport
from reference_impl.sender.provider import Provider
from reference_impl.sender.session import PLAIN_AUTH_REFUSED
from simulator.esp.server import FakeESP
from tests.pregreeting import CLOSE, STALL, PreGreetingServer

pytestmark = pytest.mark.e2e

SCENARIO = """
name = "sender-tests"
[outcomes]
delivered = 1.0
[callbacks]
batch_size = 1000
delay = 0.0
retry_schedule = [0.05, 0.1]
"""
GREETING_REFUSED = SCENARIO.replace(
    "[callbacks]",
    '[[smtp.faults]]\nstage = "connect"\nrate = 1.0\nreply = "554 5.3.2 No SMTP service here"\n'
    "[callbacks]",
)
USER, PASSWORD = "platform", "correct horse"


@contextmanager
def fake_esp(
    folder: Path, rx: RunningReceiver, text: str = SCENARIO, **options: Any
) -> Iterator[FakeESP]:
    scenario = folder / "scenario.toml"
    scenario.write_text(text)
    with FakeESP(
        scenario, rx.callback_url, spool=folder / "spool.sqlite3", poll_seconds=0.02, **options
    ) as esp:
        yield esp


def provider_for(esp: FakeESP, folder: Path, **fields: Any) -> Provider:
    ca_file = None
    if esp.ca is not None:
        ca_file = str(folder / "ca.pem")
        esp.ca.cert_pem.write_to_path(ca_file)
    base = Provider(
        nickname="test",
        host="127.0.0.1",
        port=esp.port,
        from_address="campaigns@platform.example",
        from_name="Platform",
        timeout=5.0,
        ca_file=ca_file,
    )
    return replace(base, **fields)


def send(
    provider: Provider, rx: RunningReceiver, recipients: list[str], **kw: Any
) -> CampaignReport:
    return Campaign(
        provider, recipients, "sender_test", store=rx.store, receiver_url=rx.url, **kw
    ).run()


def errors_by_recipient(report: CampaignReport) -> dict[str, str | None]:
    return {r.recipient: r.error for r in report.results}


def assert_loop_closed(esp: FakeESP, rx: RunningReceiver, report: CampaignReport) -> None:
    """Every message the ESP accepted came back as a callback with its meta, byte-exact."""
    esp.wait_delivered(timeout=20, messages=len(report.sent))
    spooled = {m["meta"] for m in esp.reader().messages(limit=10_000)}
    assert spooled == {r.meta for r in report.sent}
    logged = httpx.get(f"{rx.url}/api/callbacks", params={"limit": 1000, "body": "true"})
    callbacks = logged.json()["callbacks"]
    check = check_attribution(rx.store.sent_messages(), callbacks)
    assert check.ok, (check.lost, check.misattributed)
    assert check.matched == len(report.sent)


def send_failures(rx: RunningReceiver) -> list[dict[str, Any]]:
    return httpx.get(f"{rx.url}/api/events", params={"type": "send_failed"}).json()["events"]


# --- schemes and AUTH ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "tls"),
    [("smtp", "none"), ("smtp", "smtp"), ("starttls", "starttls"), ("smtps", "smtps")],
)
def test_each_scheme_delivers_and_the_loop_closes(
    tmp_path: Path, receiver: RunningReceiver, scheme: str, tls: str
) -> None:
    """plain, opportunistic STARTTLS, required STARTTLS, SMTPS (trustme CA via ca_file)."""
    with fake_esp(tmp_path, receiver, tls=tls) as esp:
        provider = provider_for(esp, tmp_path, scheme=scheme)
        report = send(provider, receiver, [f"user{n}@example.com" for n in range(5)], connections=2)
        assert [r.error for r in report.results] == [None] * 5
        assert_loop_closed(esp, receiver, report)


def test_auth_success_over_starttls(tmp_path: Path, receiver: RunningReceiver) -> None:
    with fake_esp(tmp_path, receiver, tls="starttls", credentials={USER: PASSWORD}) as esp:
        provider = provider_for(esp, tmp_path, scheme="starttls", username=USER, password=PASSWORD)
        report = send(provider, receiver, ["a@example.com", "b@example.com"])
        assert errors_by_recipient(report) == {"a@example.com": None, "b@example.com": None}


def test_auth_success_with_password_from_the_environment(
    tmp_path: Path, receiver: RunningReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BB_TEST_SMTP_PASSWORD", PASSWORD)
    with fake_esp(tmp_path, receiver, tls="smtps", credentials={USER: PASSWORD}) as esp:
        provider = provider_for(
            esp, tmp_path, scheme="smtps", username=USER, password_env="BB_TEST_SMTP_PASSWORD"
        )
        assert send(provider, receiver, ["a@example.com"]).results[0].error is None


def test_auth_failure_is_a_connection_error_for_every_recipient(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    with fake_esp(tmp_path, receiver, tls="starttls", credentials={USER: PASSWORD}) as esp:
        provider = provider_for(esp, tmp_path, scheme="starttls", username=USER, password="wrong")
        report = send(provider, receiver, ["a@example.com", "b@example.com"])
    assert set(errors_by_recipient(report).values()) == {e.CONNECTION_ERROR}
    assert report.results[0].failure is not None
    assert report.results[0].failure.stage == e.AUTH
    assert report.results[0].failure.code == 535


def test_credentials_are_never_sent_in_clear(tmp_path: Path, receiver: RunningReceiver) -> None:
    with fake_esp(
        tmp_path, receiver, tls="none", credentials={USER: PASSWORD}, allow_auth_without_tls=True
    ) as esp:
        provider = provider_for(esp, tmp_path, scheme="smtp", username=USER, password=PASSWORD)
        report = send(provider, receiver, ["a@example.com"])
    failure = report.results[0].failure
    assert failure is not None
    assert (report.results[0].error, failure.detail) == (e.CONNECTION_ERROR, PLAIN_AUTH_REFUSED)


# --- the four error classes ---------------------------------------------------------------


def test_invalid_email_id_rcpt_550_and_malformed_address(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    """SMTP invalid email ID, raised as Notification Failed and counted; the campaign goes on."""
    recipients = [
        "rcpt550_5.1.1@example.com",
        "rcpt553@example.com",
        "no at sign",
        "ok@example.com",
    ]
    with fake_esp(tmp_path, receiver) as esp:
        report = send(provider_for(esp, tmp_path, scheme="starttls"), receiver, recipients)
    assert errors_by_recipient(report) == {
        "rcpt550_5.1.1@example.com": e.INVALID_EMAIL,
        "rcpt553@example.com": e.INVALID_EMAIL,
        "no at sign": e.INVALID_EMAIL,
        "ok@example.com": None,
    }
    raised = send_failures(receiver)
    assert {ev["profile"] for ev in raised} == {"rcpt550_5.1.1@example.com", "rcpt553@example.com"}
    assert {ev["name"] for ev in raised} == {"Notification Failed"}
    assert {ev["properties"]["Error"] for ev in raised} == {e.INVALID_EMAIL}
    label = httpx.get(f"{receiver.url}/api/labels/sender_test").json()
    assert label["sent"] == 1
    assert label["counts"]["send_failed"] == 2


def test_dispatching_failed_data_refused_and_session_broken(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    recipients = [
        "data451@example.com",
        "datadrop@example.com",
        "rcpt452@example.com",
        "ok@example.com",
    ]
    with fake_esp(tmp_path, receiver) as esp:
        report = send(provider_for(esp, tmp_path), receiver, recipients, connections=1)
    assert errors_by_recipient(report) == {
        "data451@example.com": e.DISPATCHING_FAILED,
        "datadrop@example.com": e.DISPATCHING_FAILED,
        "rcpt452@example.com": e.DISPATCHING_FAILED,
        "ok@example.com": None,
    }
    assert {ev["properties"]["Error"] for ev in send_failures(receiver)} == {e.DISPATCHING_FAILED}


def test_dispatching_failed_mail_from_refused(tmp_path: Path, receiver: RunningReceiver) -> None:
    with fake_esp(tmp_path, receiver) as esp:
        provider = provider_for(esp, tmp_path, from_address="mail550_5.7.1@platform.example")
        report = send(provider, receiver, ["a@example.com", "b@example.com"])
    assert set(errors_by_recipient(report).values()) == {e.DISPATCHING_FAILED}
    assert {r.failure.stage for r in report.results if r.failure} == {e.MAIL}


def test_connection_error_refused_port(receiver: RunningReceiver) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = Provider("closed", "127.0.0.1", port, "a@platform.example", timeout=2.0)
    report = send(provider, receiver, ["a@example.com", "b@example.com"], retries=1)
    assert set(errors_by_recipient(report).values()) == {e.CONNECTION_ERROR}
    assert len(send_failures(receiver)) == 2


def test_connection_error_refused_greeting_after_retries(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    with fake_esp(tmp_path, receiver, GREETING_REFUSED, tls="none") as esp:
        report = send(provider_for(esp, tmp_path), receiver, ["a@example.com"], retries=1)
    failure = report.results[0].failure
    assert report.results[0].error == e.CONNECTION_ERROR
    assert failure is not None and failure.code == 554


def test_connection_error_connection_closed_before_the_greeting(receiver: RunningReceiver) -> None:
    """Section 6: "SMTP connection error | ... connection closed before the greeting": a server
    that accepts TCP and closes it before its 220 costs each recipient that error, recorded."""
    recipients = ["a@example.com", "b@example.com"]
    with PreGreetingServer(CLOSE).running() as server:
        provider = Provider("drops", "127.0.0.1", server.port, "a@platform.example", timeout=5.0)
        report = send(provider, receiver, recipients, retries=1, connections=1)
    assert errors_by_recipient(report) == dict.fromkeys(recipients, e.CONNECTION_ERROR)
    assert {r.failure.stage for r in report.results if r.failure} == {e.GREETING}
    assert server.accepted == 2 * len(recipients)  # each set-up retried once
    failed = send_failures(receiver)
    assert len(failed) == 2
    assert all(event["properties"]["Error"] == e.CONNECTION_ERROR for event in failed)


def test_timeout_no_greeting_within_the_configured_timeout(receiver: RunningReceiver) -> None:
    """Section 6: "SMTP timeout | any stage stalls past the configured timeout, the greeting
    included": a server that accepts TCP and never greets is a timeout, and is not retried."""
    recipients = ["a@example.com", "b@example.com"]
    with PreGreetingServer(STALL).running() as server:
        provider = Provider("mute", "127.0.0.1", server.port, "a@platform.example", timeout=0.3)
        report = send(provider, receiver, recipients, retries=2, connections=1)
    assert errors_by_recipient(report) == dict.fromkeys(recipients, e.TIMEOUT)
    assert {r.failure.stage for r in report.results if r.failure} == {e.GREETING}
    assert all("no greeting within 0.3 s" in r.failure.detail for r in report.results if r.failure)
    assert server.accepted == len(recipients)  # a new attempt would only wait again
    failed = send_failures(receiver)
    assert len(failed) == 2
    assert all(event["properties"]["Error"] == e.TIMEOUT for event in failed)


def test_connection_error_tls_handshake_untrusted_certificate(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    with fake_esp(tmp_path, receiver, tls="smtps") as esp:
        provider = replace(provider_for(esp, tmp_path, scheme="smtps"), ca_file=None)
        report = send(provider, receiver, ["a@example.com"])
    failure = report.results[0].failure
    assert report.results[0].error == e.CONNECTION_ERROR
    assert failure is not None and failure.stage == e.TLS
    assert "ca_file" in failure.detail


def test_timeout_stalled_rcpt(tmp_path: Path, receiver: RunningReceiver) -> None:
    with fake_esp(tmp_path, receiver) as esp:
        provider = provider_for(esp, tmp_path, timeout=0.5)
        report = send(
            provider, receiver, ["rcptstall@example.com", "ok@example.com"], connections=1
        )
    assert errors_by_recipient(report) == {
        "rcptstall@example.com": e.TIMEOUT,
        "ok@example.com": None,
    }
    assert {ev["properties"]["Error"] for ev in send_failures(receiver)} == {e.TIMEOUT}


# --- the meta on the wire -----------------------------------------------------------------


def test_longest_meta_reaches_the_esp_and_comes_back_byte_exact(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    """A 64-character local part, a long domain and a 100-character label: no folding."""
    recipient = "x" * 64 + "@" + ".".join(["d" * 59] * 3) + ".example"
    label = "L" * 100
    with fake_esp(tmp_path, receiver) as esp:
        report = Campaign(
            provider_for(esp, tmp_path), [recipient], label, store=receiver.store
        ).run()
        (result,) = report.results
        assert result.error is None and result.meta is not None
        assert len(result.meta) > 300
        esp.wait_delivered(timeout=20, messages=1)
        assert [m["meta"] for m in esp.reader().messages()] == [result.meta]
        assert parse_meta(result.meta).label == label
    callbacks = httpx.get(f"{receiver.url}/api/callbacks?body=true").json()["callbacks"]
    assert check_attribution(receiver.store.sent_messages(), callbacks).matched == 1


# --- the shipped smtp-faults scenario, retries, ids ---------------------------------------


def test_shipped_smtp_faults_scenario_classifies_each_fault(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    """Its rate-based connect, greeting and EHLO faults are retried; its address faults are not."""
    expected = {
        "unknown@example.com": e.INVALID_EMAIL,
        "full@example.com": e.DISPATCHING_FAILED,
        "greylist@example.com": e.DISPATCHING_FAILED,
        "reject@example.com": e.DISPATCHING_FAILED,
        "hangup@example.com": e.DISPATCHING_FAILED,
        "slow@example.com": e.TIMEOUT,
        "ok1@example.com": None,
        "ok2@example.com": None,
    }
    with FakeESP(
        "smtp-faults", receiver.callback_url, spool=tmp_path / "spool.sqlite3", tls="none"
    ) as esp:
        provider = Provider("faults", "127.0.0.1", esp.port, "a@platform.example", timeout=1.0)
        report = send(provider, receiver, list(expected), connections=1, retries=5)
    assert errors_by_recipient(report) == expected


def test_transient_session_failures_are_retried(tmp_path: Path, receiver: RunningReceiver) -> None:
    """The same seeded drops: without retries some sessions fail, with retries none does."""
    flaky = SCENARIO.replace(
        "[callbacks]",
        '[[smtp.faults]]\nstage = "connect"\nrate = 0.5\naction = "drop"\n[callbacks]',
    )
    recipients = ["datadrop@example.com", "a@example.com", "datadrop@example.org", "b@example.com"]
    outcomes = {}
    for retries in (0, 8):
        folder = tmp_path / f"retries-{retries}"
        folder.mkdir()
        with fake_esp(folder, receiver, flaky, tls="none", seed=4) as esp:
            report = send(
                provider_for(esp, folder), receiver, recipients, connections=1, retries=retries
            )
        outcomes[retries] = errors_by_recipient(report)
    assert e.CONNECTION_ERROR in outcomes[0].values()
    assert outcomes[8] == {
        "datadrop@example.com": e.DISPATCHING_FAILED,
        "a@example.com": None,
        "datadrop@example.org": e.DISPATCHING_FAILED,
        "b@example.com": None,
    }


def test_message_ids_are_unique_across_campaigns_in_one_store(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    with fake_esp(tmp_path, receiver, tls="none") as esp:
        provider = provider_for(esp, tmp_path)
        for _ in range(3):
            send(provider, receiver, [f"u{n}@example.com" for n in range(10)], connections=3)
    sent = receiver.store.sent_messages()
    assert len(sent) == 30
    assert len({m.message_id for m in sent}) == 30
    assert all(m.message_id < 0 for m in sent)
    assert all(parse_meta(m.meta).message_id == m.message_id for m in sent)
