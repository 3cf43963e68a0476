"""The SMTP side over real sockets: TLS, AUTH, limits, SMTPUTF8, missing meta, faults."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import time
from pathlib import Path

import aiosmtplib
import pytest

from simulator.esp import replies
from simulator.esp.handler import ESPHandler
from simulator.esp.scenario import load_scenario, parse_scenario
from simulator.esp.server import ESPConfigError, FakeESP, check_aiosmtpd
from simulator.esp.spool import SpoolWriter
from tests.simulator.esp.conftest import assert_each_event_once, message, meta_for, system_events

pytestmark = pytest.mark.e2e
UNUSED_URL = "http://127.0.0.1:9/callback"
CREDENTIALS = {"platform": "s3cret"}


def ehlo_features(client: smtplib.SMTP) -> set[str]:
    client.ehlo()
    return set(client.esmtp_features)


def test_starttls_required_refuses_mail_before_tls_then_accepts_after() -> None:
    with (
        FakeESP("smoke", UNUSED_URL, tls="starttls") as esp,
        smtplib.SMTP("127.0.0.1", esp.port, timeout=5) as client,
    ):
        assert "starttls" in ehlo_features(client)
        code, _ = client.mail("a@example.com")
        assert code == 530
        client.starttls(context=esp.client_tls_context())
        client.ehlo()
        assert client.mail("a@example.com")[0] == 250


def test_auth_plain_and_login_after_starttls_with_configured_credentials() -> None:
    with FakeESP("smoke", UNUSED_URL, credentials=CREDENTIALS) as esp:
        for mechanism in ("PLAIN", "LOGIN"):
            with smtplib.SMTP("127.0.0.1", esp.port, timeout=5) as client:
                assert "auth" not in ehlo_features(client), "no AUTH before TLS"
                assert client.mail("a@example.com")[0] == 530, "AUTH is required"
                client.rset()
                client.starttls(context=esp.client_tls_context())
                client.ehlo()
                assert mechanism in client.esmtp_features["auth"].split()
                with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                    client.login("platform", "wrong")
                assert refused.value.smtp_code == 535
                client.user, client.password = "platform", "s3cret"
                authobject = getattr(client, f"auth_{mechanism.lower()}")
                assert client.auth(mechanism, authobject)[0] == 235
                assert client.mail("a@example.com")[0] == 250


def test_smtps_implicit_tls_advertises_and_accepts_auth() -> None:
    """aiosmtpd #274: on implicit TLS AUTH is hidden unless auth_require_tls=False; we set it."""

    async def run(port: int, context: ssl.SSLContext) -> tuple[bool, int]:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=True, tls_context=context)
        async with client:
            await client.ehlo()
            advertised = client.supports_extension("auth")
            response = await client.login("platform", "s3cret")
            return advertised, response.code

    with FakeESP("smoke", UNUSED_URL, tls="smtps", credentials=CREDENTIALS) as esp:
        advertised, code = asyncio.run(run(esp.port, esp.client_tls_context()))
    assert advertised and code == 235


def test_credentials_without_tls_is_a_configuration_error() -> None:
    with pytest.raises(ESPConfigError, match="TLS is off"):
        FakeESP("smoke", UNUSED_URL, tls="none", credentials=CREDENTIALS)


def test_auth_without_tls_only_when_explicitly_allowed() -> None:
    with (
        FakeESP(
            "smoke", UNUSED_URL, tls="none", credentials=CREDENTIALS, allow_auth_without_tls=True
        ) as esp,
        smtplib.SMTP("127.0.0.1", esp.port, timeout=5) as client,
    ):
        assert "auth" in ehlo_features(client)
        client.login("platform", "s3cret")


def test_message_size_limit_gives_552(tmp_path: Path) -> None:
    text = (Path(load_scenario("smoke").source)).read_text() + "\n[smtp]\nmax_message_size = 2048\n"
    scenario = tmp_path / "small.toml"
    scenario.write_text(text)
    with FakeESP(scenario, UNUSED_URL) as esp, smtplib.SMTP("127.0.0.1", esp.port) as client:
        mail = message("big@example.com", meta_for("big@example.com", 1))
        mail.set_content("x" * 4000)
        with pytest.raises(smtplib.SMTPResponseException) as refused:
            client.sendmail("a@example.com", ["big@example.com"], mail.as_bytes())
        assert refused.value.smtp_code == 552


def test_recipient_limit_gives_452() -> None:
    with FakeESP("smtp-faults", UNUSED_URL) as esp:
        limit = esp.scenario.smtp.max_recipients
        client = _connect_retrying(esp.port)
        with client:
            client.mail("a@example.com")
            answers = [client.rcpt(f"r{i}@example.com") for i in range(limit + 1)]
    replies_seen = [f"{code} {text.decode()}" for code, text in answers]
    assert replies_seen == [replies.OK] * limit + [replies.TOO_MANY_RECIPIENTS]


def test_smtputf8_recipient_is_accepted_and_reported(receiver) -> None:
    rcpt = "josé@exämple.com"
    with FakeESP("ses-simulator", receiver.callback_url, batch_delay=0.0) as esp:
        with smtplib.SMTP("127.0.0.1", esp.port) as client:
            mail = message("x@example.com", meta_for("bounce@example.com", 5))
            client.sendmail("a@example.com", [rcpt], mail.as_bytes(), mail_options=["SMTPUTF8"])
        esp.wait_delivered(messages=1)
        events = esp.reader().batches()[0]["payload"]["events"]["success"]
    assert [e["email"] for e in events] == [rcpt]


def test_mail_without_meta_is_accepted_and_its_callbacks_carry_no_meta(receiver) -> None:
    with FakeESP("ses-simulator", receiver.callback_url, batch_delay=0.0) as esp:
        with smtplib.SMTP("127.0.0.1", esp.port) as client:
            client.send_message(message("bounce@example.com", None))
        esp.wait_delivered(messages=1)
        batch = esp.reader().batches()[0]
    (event,) = batch["payload"]["events"]["failed"]
    assert "meta" not in event and event["type"] == "hard_bounce"
    assert batch["problems"] == [], "the receiver must refuse it with 'invalid meta'"
    assert system_events(receiver) == []


def test_scenario_may_drop_callbacks_for_mail_without_meta(tmp_path: Path, receiver) -> None:
    text = load_scenario("ses-simulator").source
    data = Path(text).read_text().replace("[callbacks]", '[callbacks]\nmissing_meta = "drop"')
    scenario = tmp_path / "drop.toml"
    scenario.write_text(data)
    with FakeESP(scenario, receiver.callback_url, batch_delay=0.0) as esp:
        with smtplib.SMTP("127.0.0.1", esp.port) as client:
            client.send_message(message("bounce@example.com", None))
        stats = esp.wait_delivered(messages=1)
    assert stats["messages"] == 1 and not stats["events_pending"] and not stats["events_batched"]
    assert not esp_batches(stats)


def esp_batches(stats: dict[str, int]) -> int:
    return sum(v for k, v in stats.items() if k.startswith("batches_"))


def _connect_retrying(port: int, attempts: int = 30) -> smtplib.SMTP:
    """Connect as a real sender would: retry sessions that hit a connect-stage fault."""
    for _ in range(attempts):
        try:
            client = smtplib.SMTP("127.0.0.1", port, timeout=5)
            code, _ = client.ehlo()
            if code == 250:
                return client
            client.close()
        except (smtplib.SMTPException, OSError):
            continue
    raise AssertionError("could not get a clean session")


@pytest.mark.parametrize(
    ("stage", "address", "code"),
    [
        ("mail", "blocked-sender@example.com", 550),
        ("mail", "mail451@example.com", 451),
        ("rcpt", "unknown@example.com", 550),
        ("rcpt", "full@example.com", 452),
        ("rcpt", "rcpt550_5.1.1@example.com", 550),
        ("rcpt", "rcpt452+x@anywhere.test", 452),
        ("data", "greylist@example.com", 451),
        ("data", "reject@example.com", 554),
        ("data", "data451@example.com", 451),
        ("data", "data554_5.7.1@example.com", 554),
    ],
)
def test_smtp_faults_by_address_answer_that_stage(stage: str, address: str, code: int) -> None:
    with FakeESP("smtp-faults", UNUSED_URL) as esp:
        client = _connect_retrying(esp.port)
        with client:
            sender = address if stage == "mail" else "ok@example.com"
            got = client.mail(sender)[0]
            if stage != "mail":
                assert got == 250
                got = client.rcpt(address)[0]
            if stage == "data":
                assert got == 250
                got = client.data(message(address, meta_for(address, 9)).as_bytes())[0]
    assert got == code


def test_coded_reply_carries_the_enhanced_status() -> None:
    with FakeESP("smtp-faults", UNUSED_URL) as esp:
        client = _connect_retrying(esp.port)
        with client:
            client.mail("ok@example.com")
            code, text = client.rcpt("rcpt550_5.1.1@example.com")
    assert f"{code} {text.decode()}" == replies.USER_UNKNOWN


def test_auth_fault_on_login_gives_535() -> None:
    with FakeESP("smtp-faults", UNUSED_URL, credentials=CREDENTIALS) as esp:
        for _ in range(10):
            client = _connect_retrying(esp.port)
            with client:
                client.starttls(context=esp.client_tls_context())
                client.ehlo()
                try:
                    client.login("nobody", "whatever")
                except smtplib.SMTPAuthenticationError as exc:
                    if exc.smtp_code == 454:
                        continue
                    assert exc.smtp_code == 535
                    return
    raise AssertionError("no AUTH attempt reached the login fault")


def test_stall_fault_outlasts_a_client_timeout() -> None:
    with FakeESP("smtp-faults", UNUSED_URL) as esp:
        client = _connect_retrying(esp.port)
        client.timeout = 0.5
        client.sock.settimeout(0.5)
        client.mail("ok@example.com")
        started = time.monotonic()
        with pytest.raises((TimeoutError, socket.timeout, smtplib.SMTPServerDisconnected)):
            client.rcpt("slow@example.com")
        assert time.monotonic() - started < 2.5
        client.close()


def test_drop_fault_at_data_breaks_the_session() -> None:
    with FakeESP("smtp-faults", UNUSED_URL) as esp:
        client = _connect_retrying(esp.port)
        client.mail("ok@example.com")
        client.rcpt("hangup@example.com")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.data(message("hangup@example.com", None).as_bytes())
        assert esp.stats()["messages"] == 0


def test_connect_stage_faults_by_rate_refuse_drop_and_delay() -> None:
    """Seeded chaos: over 40 connections each connect-stage fault shows up, reproducibly."""
    seen = []
    with FakeESP("smtp-faults", UNUSED_URL, seed=1) as esp:
        for _ in range(40):
            started = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", esp.port), timeout=3) as sock:
                    greeting = sock.recv(100)
            except OSError:
                greeting = b""
            slow = time.monotonic() - started >= 0.3
            seen.append("drop" if not greeting else greeting[:3].decode() + ("s" if slow else ""))
    kinds = set(seen)
    assert {"drop", "554", "220s", "220"} <= kinds, seen


def test_rate_faults_need_a_rate_or_a_match() -> None:
    data = {"outcomes": {"delivered": 1}, "smtp": {"faults": [{"stage": "rcpt", "reply": "452"}]}}
    with pytest.raises(ValueError, match=r"smtp\.faults\[0\]\.rate"):
        parse_scenario(data, "inline.toml")


def test_aiosmtpd_older_than_1_4_6_is_refused() -> None:
    check_aiosmtpd("1.4.6")
    with pytest.raises(ESPConfigError, match="CVE-2024-27305"):
        check_aiosmtpd("1.4.5")


def test_mail_over_aiosmtplib_starttls_with_auth_reaches_the_receiver(receiver) -> None:
    cases = {"bounce@tls.example": "hard_bounce", "complaint@tls.example": "spam"}

    async def send(port: int, context: ssl.SSLContext) -> None:
        for rcpt in cases:
            await aiosmtplib.send(
                message(rcpt, meta_for(rcpt, 77)),
                hostname="127.0.0.1",
                port=port,
                start_tls=True,
                tls_context=context,
                username="platform",
                password="s3cret",
            )

    with FakeESP(
        "ses-simulator", receiver.callback_url, credentials=CREDENTIALS, batch_delay=0.0
    ) as esp:
        asyncio.run(send(esp.port, esp.client_tls_context()))
        esp.wait_delivered(messages=2)
    assert_each_event_once(receiver, cases)


def test_only_stages_that_can_fault_get_a_handler_hook(tmp_path: Path) -> None:
    """Faults at every stage stay, while a stage with none costs no aiosmtpd hook per command."""
    writer = SpoolWriter(tmp_path / "spool.sqlite3")
    hooks = {
        name: {
            m for m in dir(ESPHandler(load_scenario(name), 0, writer)) if m.startswith("handle_")
        }
        for name in ("mixed", "smtp-faults")
    }
    assert hooks["mixed"] == {"handle_MAIL", "handle_RCPT", "handle_DATA"}, "coded addresses"
    assert hooks["smtp-faults"] == {
        "handle_HELO",
        "handle_EHLO",
        "handle_AUTH",
        "handle_MAIL",
        "handle_RCPT",
        "handle_DATA",
    }
    quiet = parse_scenario(
        {"outcomes": {"delivered": 1}, "smtp": {"address_faults": False}}, "quiet.toml"
    )
    plain = {m for m in dir(ESPHandler(quiet, 0, writer)) if m.startswith("handle_")}
    assert plain == {"handle_RCPT", "handle_DATA"}, "recipient limit and spool only"


def test_mail_without_fault_hooks_is_still_accepted_and_spooled(tmp_path: Path) -> None:
    scenario = tmp_path / "quiet.toml"
    scenario.write_text("[outcomes]\ndelivered = 1.0\n[smtp]\naddress_faults = false\n")
    with FakeESP(scenario, UNUSED_URL, tls="none") as esp:
        with smtplib.SMTP("127.0.0.1", esp.port, timeout=5) as client:
            assert client.ehlo()[0] == 250
            assert client.mail("mail451@example.com")[0] == 250, "coded addresses are off"
            assert client.rcpt("a@example.com")[0] == 250
            assert (
                client.data(message("a@example.com", meta_for("a@example.com", 3)).as_bytes())[0]
                == 250
            )
        assert esp.stats()["messages"] == 1


def test_ehlo_offers_pipelining_and_a_pipelined_group_is_answered_in_order() -> None:
    """RFC 2920: the EHLO reply lists PIPELINING (with or without the scenario's EHLO faults),
    and MAIL, RCPT and DATA written in one piece get their three replies, in order."""
    for scenario in ("smoke", "smtp-faults"):
        with FakeESP(scenario, UNUSED_URL, tls="none") as esp:
            with smtplib.SMTP("127.0.0.1", esp.port, timeout=5) as client:
                assert "pipelining" in ehlo_features(client)
            with socket.create_connection(("127.0.0.1", esp.port), timeout=5) as sock:
                reader = sock.makefile("rb")
                assert reader.readline().startswith(b"220")
                sock.sendall(b"EHLO client.example\r\n")
                while (line := reader.readline())[3:4] == b"-":
                    pass
                assert line.startswith(b"250 ")
                sock.sendall(
                    b"MAIL FROM:<a@example.com>\r\nRCPT TO:<rcpt550_5.1.1@example.com>\r\nDATA\r\n"
                )
                codes = [reader.readline()[:3] for _ in range(3)]
                assert codes == [b"250", b"550", b"503"], scenario
