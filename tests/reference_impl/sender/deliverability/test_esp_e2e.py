"""`provider check --deliverability --esp` against a real fake ESP that judges: issue 16's two
independent models of DKIM, SPF and DMARC must agree.

The platform side judges the probe itself with `--zone`; the fake ESP judges it with its own
code (`simulator/esp/auth/`) and reports an RFC 8601 header that the platform side reads back.
Each case writes ONE scenario file, based on the shipped `bulk-sender-rules`, whose
`[authentication]` table is both the ESP's zone and the `--zone` file, so any difference between
the two verdicts is a bug on one side. The probe goes over real SMTP, its verdicts come back
through the ESP's real HTTP API.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from click.testing import CliRunner

from reference_impl.cli import main
from reference_impl.sender.deliverability.checks import ACCEPTED, CHECKS, DKIM, DMARC, SPF
from simulator.esp.api import SpoolAPI
from simulator.esp.catalog import SCENARIO_KINDS, resolve_path
from simulator.esp.server import FakeESP
from tests.reference_impl.sender.deliverability.conftest import (
    CLIENT_IP,
    DOMAIN,
    SELECTOR,
    Keys,
    provider_table,
    record_value,
    zone_table,
)

pytestmark = pytest.mark.e2e

AUTH = (DKIM, SPF, DMARC)
OTHER_SIGNER = "esp-mail.example"
SUBDOMAIN = f"mail.{DOMAIN}"
UNAUTHORISED_IP = "198.51.100.20"
OFF = {"unauthenticated": "off", "unaligned": "off", "unsubscribe": "off", "blocklisted": "off"}


@dataclass(frozen=True)
class Case:
    """A zone (and provider) that differs from the all-PASS one, and the dkim, spf and dmarc
    verdicts both sides must give for it."""

    expected: tuple[str, str, str]
    records: dict[str, list[str] | None] = field(default_factory=dict)
    client_ip: str = CLIENT_IP
    provider: dict[str, Any] = field(default_factory=dict)
    other_key: bool = False


CASES = {
    "all-pass": Case(("PASS", "PASS", "PASS")),
    "dkim-key-missing": Case(
        ("FAIL", "PASS", "PASS"), records={f"{SELECTOR}._domainkey.{DOMAIN}": None}
    ),
    "spf-fail-for-the-ip": Case(("PASS", "FAIL", "PASS"), client_ip=UNAUTHORISED_IP),
    "dmarc-unaligned": Case(
        ("PASS", "FAIL", "FAIL"),
        provider={"dkim_domain": OTHER_SIGNER},
        client_ip=UNAUTHORISED_IP,
    ),
    "dmarc-p-none": Case(
        ("PASS", "PASS", "WARN"), records={f"_dmarc.{DOMAIN}": ["v=DMARC1; p=none"]}
    ),
    # The cases below only compare the two sides, each where an RFC leaves a trap.
    "spf-softfail": Case(
        ("PASS", "WARN", "PASS"),
        records={DOMAIN: [f"v=spf1 ip4:{CLIENT_IP} ~all"]},
        client_ip=UNAUTHORISED_IP,
    ),
    "dkim-other-key-published": Case(("FAIL", "PASS", "PASS"), other_key=True),
    "no-dmarc-record": Case(("PASS", "PASS", "FAIL"), records={f"_dmarc.{DOMAIN}": None}),
    "two-dmarc-records": Case(
        ("PASS", "PASS", "FAIL"),
        records={f"_dmarc.{DOMAIN}": ["v=DMARC1; p=reject", "v=DMARC1; p=none"]},
    ),
    # RFC 7489 6.4: the version is case-sensitive ("DMARC1"); 6.6.3: records not starting with
    # it are discarded, so this domain has no DMARC record.
    "dmarc-version-lowercase": Case(
        ("PASS", "PASS", "FAIL"), records={f"_dmarc.{DOMAIN}": ["v=dmarc1; p=reject"]}
    ),
    # RFC 7489 6.6.3: a From subdomain with no record of its own takes the organizational
    # domain's record and its sp=; relaxed DKIM alignment (d=acme.example) passes.
    "subdomain-from-sp-none": Case(
        ("PASS", "FAIL", "WARN"),
        records={f"_dmarc.{DOMAIN}": ["v=DMARC1; p=reject; sp=none"]},
        provider={"from_address": f"news@{SUBDOMAIN}"},
    ),
    "subdomain-from-strict-adkim": Case(
        ("PASS", "FAIL", "FAIL"),
        records={f"_dmarc.{DOMAIN}": ["v=DMARC1; p=reject; adkim=s"]},
        provider={"from_address": f"news@{SUBDOMAIN}"},
    ),
    # RFC 7489 6.6.3: a record whose sp= is not valid (and no rua=) is not applied: no DMARC.
    "subdomain-from-invalid-sp": Case(
        ("PASS", "FAIL", "FAIL"),
        records={f"_dmarc.{DOMAIN}": ["v=DMARC1; p=reject; sp=bogus"]},
        provider={"from_address": f"news@{SUBDOMAIN}"},
    ),
    # RFC 7489 6.6.3: the same, but a valid rua= makes receivers read it as p=none.
    "invalid-sp-with-rua-reads-as-p-none": Case(
        ("PASS", "FAIL", "WARN"),
        records={f"_dmarc.{DOMAIN}": ["v=DMARC1; p=reject; sp=bogus; rua=mailto:d@acme.example"]},
        provider={"from_address": f"news@{SUBDOMAIN}"},
    ),
}
MAIN = ("all-pass", "dkim-key-missing", "spf-fail-for-the-ip", "dmarc-unaligned", "dmarc-p-none")


def _files(tmp_path: Path, keys: Keys, case: Case, enforcement: dict[str, str] | None) -> Path:
    """The shipped bulk-sender-rules with the case's zone (and `enforcement` when given); the
    provider file next to it. The same file is the ESP's scenario and the `--zone` file."""
    records = dict(case.records)
    signer = case.provider.get("dkim_domain", DOMAIN)
    if signer != DOMAIN:
        records[f"{SELECTOR}._domainkey.{signer}"] = [keys.value]
    if case.other_key:
        records[f"{SELECTOR}._domainkey.{DOMAIN}"] = [record_value(keys.other)]
    zone = zone_table(keys, records)["authentication"]
    zone["client_ip"] = case.client_ip
    scenario = tomllib.loads(resolve_path("bulk-sender-rules", SCENARIO_KINDS).read_text())
    scenario["authentication"] = zone
    if enforcement is not None:
        scenario["enforcement"] = enforcement
    (tmp_path / "scenario.toml").write_text(tomli_w.dumps(scenario))
    (tmp_path / "provider.toml").write_text(tomli_w.dumps(provider_table(keys, **case.provider)))
    return tmp_path / "scenario.toml"


def _check(tmp_path: Path, *mode: str) -> tuple[int, dict[str, Any]]:
    args = ["provider", "check", str(tmp_path / "provider.toml"), "--deliverability", "--json"]
    result = CliRunner().invoke(main, [*args, *mode])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def _through_esp(tmp_path: Path, scenario: Path) -> tuple[int, dict[str, Any], list[dict]]:
    with (
        FakeESP(
            scenario, "http://127.0.0.1:9/callback", spool=tmp_path / "esp.db", tls="none"
        ) as esp,
        SpoolAPI(esp.spool_path) as api,
    ):
        code, document = _check(tmp_path, "--esp", f"127.0.0.1:{esp.port}", "--esp-api", api.url)
        return code, document, esp.reader().messages()


def _verdicts(document: dict[str, Any]) -> dict[str, str]:
    return {finding["check"]: finding["verdict"] for finding in document["checks"]}


@pytest.mark.parametrize("name", MAIN)
def test_esp_mode_reports_each_verdict_under_the_shipped_bulk_sender_rules(
    tmp_path: Path, keys: Keys, name: str
) -> None:
    """All-PASS, a missing DKIM key, SPF failing for the pretended IP and p=none are taken by
    the shipped rules (an aligned pass remains) and judged from the ESP's Authentication-Results;
    unaligned DMARC is refused at DATA, which is a FAIL line naming the rule, exit 1."""
    case = CASES[name]
    code, document, stored = _through_esp(tmp_path, _files(tmp_path, keys, case, None))
    verdicts = _verdicts(document)
    if name == "dmarc-unaligned":
        assert code == 1 and stored == []
        assert list(verdicts) == [ACCEPTED, *CHECKS[3:]]
        (refused,) = [f for f in document["checks"] if f["check"] == ACCEPTED]
        assert refused["verdict"] == "FAIL"
        assert "at DATA: 550 5.7.26" in refused["detail"]
        assert "dmarc-unaligned" in refused["detail"] and "dmarc=fail" in refused["detail"]
        assert "--zone" in refused["advice"]
        return
    (message,) = stored
    assert message["authentication_results"].startswith("fake-esp.bounceback.test; ")
    assert list(verdicts) == [ACCEPTED, *CHECKS]
    assert verdicts[ACCEPTED] == "PASS"
    assert tuple(verdicts[check] for check in AUTH) == case.expected
    assert all(verdicts[check] == "PASS" for check in CHECKS[3:])
    assert code == (1 if "FAIL" in case.expected else 0)


@pytest.mark.parametrize("name", list(CASES))
def test_the_zone_check_and_the_fake_esp_agree_on_the_same_zone(
    tmp_path: Path, keys: Keys, name: str
) -> None:
    """The same file as `--zone` and as the ESP's scenario (every rule off, so the probe is
    stored): the dkim, spf and dmarc verdicts are the same, and the ones the RFCs give."""
    case = CASES[name]
    scenario = _files(tmp_path, keys, case, OFF)
    _, by_zone = _check(tmp_path, "--zone", str(scenario))
    _, by_esp, stored = _through_esp(tmp_path, scenario)
    assert len(stored) == 1
    zone_said = {check: _verdicts(by_zone)[check] for check in AUTH}
    esp_said = {check: _verdicts(by_esp)[check] for check in AUTH}
    assert esp_said == zone_said, stored[0]["authentication_results"]
    assert tuple(zone_said.values()) == case.expected


def test_a_listed_client_ip_is_a_fail_line_at_mail_from(tmp_path: Path, keys: Keys) -> None:
    """The shipped blocklist refuses 203.0.113.7 at MAIL FROM with 554 5.7.1: a FAIL naming the
    listing, exit 1, whatever DKIM, SPF and DMARC would have said."""
    scenario = _files(tmp_path, keys, Case(("PASS", "FAIL", "PASS"), client_ip="203.0.113.7"), None)
    code, document, stored = _through_esp(tmp_path, scenario)
    assert code == 1 and stored == []
    (refused,) = [f for f in document["checks"] if f["check"] == ACCEPTED]
    assert refused["verdict"] == "FAIL"
    assert "at MAIL: 554 5.7.1" in refused["detail"] and "listed: 203.0.113.7" in refused["detail"]


def test_a_temporary_refusal_says_nothing_of_the_message_one_line_exit_2(
    tmp_path: Path, keys: Keys
) -> None:
    """A 451 at DATA (the coded address `data451@`) is no verdict: one line, exit 2."""
    scenario = _files(tmp_path, keys, CASES["all-pass"], None)
    with (
        FakeESP(
            scenario, "http://127.0.0.1:9/callback", spool=tmp_path / "esp.db", tls="none"
        ) as esp,
        SpoolAPI(esp.spool_path) as api,
    ):
        args = ["provider", "check", str(tmp_path / "provider.toml"), "--deliverability"]
        address = ["--esp", f"127.0.0.1:{esp.port}", "--esp-api", api.url]
        result = CliRunner().invoke(main, [*args, *address, "--to", "data451@example.com"])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert "did not take the probe" in result.output and "451" in result.output
