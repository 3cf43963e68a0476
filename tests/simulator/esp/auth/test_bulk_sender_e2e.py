"""Issue 16, the fake ESP's authentication verdicts, end to end: every verdict combination of the
shipped `bulk-sender-rules` scenario gives its documented outcome.

The platform's sender (`Campaign`, DKIM-signing with a key made by `generate_key`) sends one
message over real SMTP to the fake ESP running the shipped scenario, whose zone gets the key's
record; the ESP's verdicts decide; the reference receiver shows the cause in its read API: a
refusal at SMTP time as the sender's Notification Failed (`send_failed`, Description = the
reply), an accepted-then-bounced message as Notification Failed (Error = hard bounce) and a spam
one as Channel Unsubscribed (`reason`), both naming the rule.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from reference_impl.receiver.server import RunningReceiver
from reference_impl.sender import errors as e
from reference_impl.sender.campaign import Campaign
from reference_impl.sender.dkim import generate_key
from reference_impl.sender.provider import parse_providers
from simulator.esp import replies
from simulator.esp.auth.rules import (
    BLOCKLISTED,
    ONE_CLICK_UNSUBSCRIBE,
    UNALIGNED,
    UNAUTHENTICATED,
)
from simulator.esp.catalog import SCENARIO_KINDS, resolve_path
from simulator.esp.server import FakeESP

pytestmark = pytest.mark.e2e

SELECTOR = "bb2026"
DOMAIN = "platform.example"
OTHER_SIGNER = "esp-mail.example"
UNAUTHORISED_IP = "198.51.100.20"
LISTED_IP = "203.0.113.7"
HTTPS_PAGE = "https://platform.example/unsubscribe?e={email}"
HTTP_PAGE = "http://platform.example/unsubscribe?e={email}"
RECIPIENT = "reader@example.com"


def record_value(zone_line: str) -> str:
    """The TXT value a resolver returns: the zone line's quoted strings, joined."""
    return "".join(zone_line.split(" IN TXT ", 1)[1].split('"')[1::2])


@dataclass
class Case:
    """One verdict combination: how the scenario and the provider differ from the defaults
    (DKIM d=platform.example, SPF from the authorised IP, https one-click)."""

    scenario: Callable[[dict[str, Any]], None] = lambda data: None
    provider: dict[str, Any] = field(default_factory=dict)
    signer: str | None = DOMAIN


def _set_ip(ip: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["authentication"].update(client_ip=ip)


def _enforce(**actions: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["enforcement"].update(actions)


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def apply(data: dict[str, Any]) -> None:
        for change in changes:
            change(data)

    return apply


def _no_dmarc(data: dict[str, Any]) -> None:
    del data["authentication"]["dns"][f"_dmarc.{DOMAIN}"]


def _list_domain(data: dict[str, Any]) -> None:
    data["blocklist"]["domains"].append(DOMAIN)


def _scenario(folder: Path, case: Case, zone_line: str | None) -> Path:
    data = tomllib.loads(resolve_path("bulk-sender-rules", SCENARIO_KINDS).read_text())
    data["callbacks"] = {"delay": 0.0, "retry_schedule": [0.05, 0.1]}
    if zone_line is not None:
        name = zone_line.split(" ", 1)[0].rstrip(".")
        data["authentication"]["dns"][name] = [record_value(zone_line)]
    case.scenario(data)
    path = folder / "scenario.toml"
    path.write_text(tomli_w.dumps(data))
    return path


@dataclass
class Outcome:
    report: Any
    esp_messages: list[dict[str, Any]]
    receiver: RunningReceiver

    @property
    def result(self) -> Any:
        (result,) = self.report.results
        return result

    def events(self, kind: str) -> list[dict[str, Any]]:
        url = f"{self.receiver.url}/api/events"
        return httpx.get(url, params={"type": kind}, timeout=10).json()["events"]


def run(tmp_path: Path, receiver: RunningReceiver, case: Case) -> Outcome:
    key = tmp_path / "dkim.pem"
    zone_line = generate_key(SELECTOR, case.signer, key) if case.signer else None
    scenario = _scenario(tmp_path, case, zone_line)
    with FakeESP(
        scenario,
        receiver.callback_url,
        spool=tmp_path / "esp.sqlite3",
        poll_seconds=0.02,
        tls="none",
    ) as esp:
        fields: dict[str, Any] = {
            "nickname": "bulk",
            "host": "127.0.0.1",
            "port": esp.port,
            "from_address": f"news@{DOMAIN}",
            "scheme": "smtp",
            "preference_center": "custom",
            "preference_center_url": HTTPS_PAGE,
        }
        if case.signer:
            fields |= {
                "dkim_selector": SELECTOR,
                "dkim_domain": case.signer,
                "dkim_key_file": str(key),
            }
        fields |= case.provider
        if fields["preference_center"] != "custom":
            del fields["preference_center_url"]
        (provider,) = parse_providers(fields, "test")
        report = Campaign(
            provider, [RECIPIENT], "bulk_rules", store=receiver.store, receiver_url=receiver.url
        ).run()
        esp.wait_delivered(timeout=20, messages=len(report.sent))
        messages = esp.reader().messages()
    return Outcome(report, messages, receiver)


def _refused(outcome: Outcome, stage: str, code: str, rule: str) -> str:
    """Refused at SMTP time: the sender records it, the ESP stores and posts nothing."""
    failure = outcome.result.failure
    assert outcome.result.error == e.DISPATCHING_FAILED
    assert failure.stage == stage and failure.detail.startswith(code)
    assert outcome.esp_messages == []
    (event,) = outcome.events("send_failed")
    properties = event["properties"]
    assert properties["Error"] == e.DISPATCHING_FAILED
    assert rule in properties["Description"] and properties["Description"].startswith(code)
    return properties["Description"]


def _delivered(outcome: Outcome, dkim: str, spf: str) -> None:
    assert outcome.result.error is None
    (message,) = outcome.esp_messages
    assert message["auth"] | {"dkim": dkim, "spf": spf, "dmarc": "pass"} == message["auth"]
    assert message["auth"]["from_domain"] == DOMAIN
    assert message["authentication_results"].startswith("fake-esp.bounceback.test; ")
    # Verification changed no byte: the meta came through the ESP and back unchanged.
    assert message["meta"] == outcome.result.meta
    assert outcome.events("send_failed") == [] and outcome.events("spam") == []
    callbacks = httpx.get(
        f"{outcome.receiver.url}/api/callbacks", params={"body": "true"}, timeout=10
    ).json()
    (callback,) = callbacks["callbacks"]
    assert '"delivered"' in callback["body"] and json.dumps(outcome.result.meta) in callback["body"]


def _bounced(outcome: Outcome, code: str, rule: str) -> str:
    """Accepted (250), then a hard bounce naming the rule: Notification Failed with Error = hard
    bounce and the reply as Description, and Channel Unsubscribed with it as `reason`."""
    assert outcome.result.error is None
    events = outcome.events("hard_bounce")
    (failed,) = [ev for ev in events if ev["name"] == "Notification Failed"]
    (unsubscribed,) = [ev for ev in events if ev["name"] == "Channel Unsubscribed"]
    description = failed["properties"]["Description"]
    assert failed["properties"]["Error"] == "hard bounce"
    assert description.startswith(code) and rule in description
    assert unsubscribed["properties"]["reason"] == description
    return description


def _reported(outcome: Outcome, kind: str, rule: str) -> dict[str, Any]:
    """Accepted (250), then a callback of `kind` whose description names the rule."""
    assert outcome.result.error is None
    (message,) = outcome.esp_messages
    (event,) = [ev for ev in outcome.events(kind) if ev["name"] == "Channel Unsubscribed"]
    assert rule in event["properties"]["reason"]
    assert message["auth"] is not None
    return event["properties"]


# --- delivered: authenticated, aligned, one-click -----------------------------------------------


def test_dkim_and_spf_pass_aligned_with_one_click_is_delivered(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    _delivered(run(tmp_path, receiver, Case()), dkim="pass", spf="pass")


def test_dkim_alone_aligned_is_delivered(tmp_path: Path, receiver: RunningReceiver) -> None:
    """SPF fails (the client IP is not authorised); the aligned DKIM pass is enough."""
    _delivered(
        run(tmp_path, receiver, Case(scenario=_set_ip(UNAUTHORISED_IP))), dkim="pass", spf="fail"
    )


def test_spf_alone_aligned_is_delivered(tmp_path: Path, receiver: RunningReceiver) -> None:
    _delivered(run(tmp_path, receiver, Case(signer=None)), dkim="none", spf="pass")


# --- refused at DATA with 550 5.7.26 ------------------------------------------------------------


def test_no_passing_dkim_or_spf_is_refused_as_unauthenticated(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    outcome = run(tmp_path, receiver, Case(signer=None, scenario=_set_ip(UNAUTHORISED_IP)))
    text = _refused(outcome, e.DATA, replies.UNAUTHENTICATED_CODE, UNAUTHENTICATED)
    assert "neither SPF nor DKIM" in text


def test_a_dkim_pass_not_aligned_with_from_is_refused_as_dmarc_unaligned(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    """Signed by another domain (d=esp-mail.example) and SPF failing: DMARC fails."""
    case = Case(signer=OTHER_SIGNER, scenario=_set_ip(UNAUTHORISED_IP))
    text = _refused(run(tmp_path, receiver, case), e.DATA, replies.UNAUTHENTICATED_CODE, UNALIGNED)
    assert "dmarc=fail" in text and OTHER_SIGNER in text


def test_a_from_domain_without_a_dmarc_record_is_refused(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    """Bulk senders must publish DMARC: aligned passes without a record are dmarc=none."""
    outcome = run(tmp_path, receiver, Case(scenario=_no_dmarc))
    text = _refused(outcome, e.DATA, replies.UNAUTHENTICATED_CODE, UNALIGNED)
    assert "dmarc=none" in text


# --- spam: one-click unsubscribe ---------------------------------------------------------------


def test_bulk_mail_without_list_unsubscribe_is_reported_as_spam(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    outcome = run(tmp_path, receiver, Case(provider={"preference_center": "none"}))
    properties = _reported(outcome, "spam", ONE_CLICK_UNSUBSCRIBE)
    assert replies.NO_LIST_UNSUBSCRIBE in properties["reason"]
    assert properties["Type"] == "spam"


def test_an_http_unsubscribe_link_is_not_one_click_and_is_reported_as_spam(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    outcome = run(tmp_path, receiver, Case(provider={"preference_center_url": HTTP_PAGE}))
    properties = _reported(outcome, "spam", ONE_CLICK_UNSUBSCRIBE)
    assert replies.NO_HTTPS_UNSUBSCRIBE in properties["reason"]


# --- the scenario's other actions: bounce, spam ---------------------------------------------------


def test_unauthenticated_with_bounce_is_accepted_then_a_hard_bounce_names_the_rule(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    change = _both(_set_ip(UNAUTHORISED_IP), _enforce(unauthenticated="bounce", unaligned="off"))
    outcome = run(tmp_path, receiver, Case(signer=None, scenario=change))
    _bounced(outcome, replies.UNAUTHENTICATED_CODE, UNAUTHENTICATED)
    (message,) = outcome.esp_messages
    assert message["auth"]["spf"] == "fail" and message["auth"]["dkim"] == "none"


def test_unaligned_with_spam_is_delivered_to_spam_naming_the_rule(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    change = _both(_set_ip(UNAUTHORISED_IP), _enforce(unaligned="spam"))
    outcome = run(tmp_path, receiver, Case(signer=OTHER_SIGNER, scenario=change))
    properties = _reported(outcome, "spam", UNALIGNED)
    assert properties["reason"].startswith("Delivered to the spam folder")


# --- blocklist: 554 5.7.1 -------------------------------------------------------------------------


def test_a_listed_client_ip_is_refused_at_mail_from(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    outcome = run(tmp_path, receiver, Case(scenario=_set_ip(LISTED_IP)))
    text = _refused(outcome, e.MAIL, replies.LISTED_CODE, BLOCKLISTED)
    assert LISTED_IP in text


def test_a_listed_sender_domain_is_refused_at_mail_from(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    outcome = run(tmp_path, receiver, Case(scenario=_list_domain))
    text = _refused(outcome, e.MAIL, replies.LISTED_CODE, BLOCKLISTED)
    assert DOMAIN in text


def test_a_listed_domain_with_bounce_is_a_hard_bounce_naming_the_listing(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    outcome = run(
        tmp_path, receiver, Case(scenario=_both(_list_domain, _enforce(blocklisted="bounce")))
    )
    description = _bounced(outcome, replies.LISTED_CODE, BLOCKLISTED)
    assert f"listed: {DOMAIN}" in description


def test_a_listed_dkim_signing_domain_is_refused_at_data(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    """The signer's d= is known only with the message: refused at DATA, naming the signer."""

    def list_signer(data: dict[str, Any]) -> None:
        data["blocklist"]["domains"].append(OTHER_SIGNER)

    outcome = run(tmp_path, receiver, Case(signer=OTHER_SIGNER, scenario=list_signer))
    text = _refused(outcome, e.DATA, replies.LISTED_CODE, BLOCKLISTED)
    assert f"the DKIM signing (d=) domain {OTHER_SIGNER} is on the blocklist" in text


def test_a_listed_ip_with_spam_is_delivered_to_spam_naming_the_listing(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    change = _both(_set_ip(LISTED_IP), _enforce(blocklisted="spam"))
    properties = _reported(run(tmp_path, receiver, Case(scenario=change)), "spam", BLOCKLISTED)
    assert LISTED_IP in properties["reason"]


# --- each action of one rule, end to end ----------------------------------------------------------


@pytest.mark.parametrize("action", ["refuse", "bounce", "spam", "off"])
def test_the_one_click_rule_gives_each_actions_documented_outcome(
    tmp_path: Path, receiver: RunningReceiver, action: str
) -> None:
    """An http-only link under `unsubscribe = <action>`: refused at DATA (550 5.7.1, the
    sender's Notification Failed), a hard bounce, spam (Channel Unsubscribed `reason`), or, off,
    delivered; every report names the rule and what is missing."""
    case = Case(
        provider={"preference_center_url": HTTP_PAGE}, scenario=_enforce(unsubscribe=action)
    )
    outcome = run(tmp_path, receiver, case)
    if action == "refuse":
        text = _refused(outcome, e.DATA, replies.ONE_CLICK_CODE, ONE_CLICK_UNSUBSCRIBE)
    elif action == "bounce":
        text = _bounced(outcome, replies.ONE_CLICK_CODE, ONE_CLICK_UNSUBSCRIBE)
    elif action == "spam":
        text = _reported(outcome, "spam", ONE_CLICK_UNSUBSCRIBE)["reason"]
    else:
        _delivered(outcome, dkim="pass", spf="pass")
        return
    assert replies.NO_HTTPS_UNSUBSCRIBE in text
