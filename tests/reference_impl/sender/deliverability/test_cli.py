"""`bounceback provider check FILE --deliverability --zone ZONE.toml`: one line per check, or
JSON; exit 1 when any check FAILs, 0 otherwise, 2 for an operator mistake. And plain
`provider check` no longer passes a plain-http preference link silently: it warns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner

from reference_impl.cli import main
from reference_impl.sender.deliverability import CHECKS
from simulator.esp.api import SpoolAPI
from simulator.esp.server import FakeESP
from tests.reference_impl.sender.deliverability.conftest import (
    DOMAIN,
    Keys,
    provider_table,
    zone_table,
)

CHECK = [sys.executable, "-m", "reference_impl.cli", "provider", "check"]


def _files(tmp_path: Path, provider: dict, zone: dict) -> tuple[Path, Path]:
    provider_path, zone_path = tmp_path / "provider.toml", tmp_path / "zone.toml"
    provider_path.write_text(tomli_w.dumps(provider))
    zone_path.write_text(tomli_w.dumps(zone))
    return provider_path, zone_path


@pytest.mark.e2e
def test_the_command_prints_one_line_per_check_and_exits_1_on_a_fail(
    tmp_path: Path, keys: Keys
) -> None:
    provider = provider_table(keys, preference_center_url="http://acme.example/u?e={email}")
    zone = zone_table(keys, {f"_dmarc.{DOMAIN}": ["v=DMARC1; p=none"]})
    provider_path, zone_path = _files(tmp_path, provider, zone)
    done = subprocess.run(
        [*CHECK, str(provider_path), "--deliverability", "--zone", str(zone_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    verdicts = {line.split()[1]: line.split()[0] for line in lines[1:-1]}
    assert list(verdicts) == list(CHECKS)
    assert verdicts == {check: "PASS" for check in CHECKS} | {
        "dmarc": "WARN",
        "list-unsubscribe": "FAIL",
    }
    assert "fix: use an https preference_center_url" in done.stdout
    assert lines[-1] == "Verdict: FAIL (1 FAIL, 1 WARN)"


def test_all_pass_exits_0_and_json_lists_every_check(tmp_path: Path, keys: Keys) -> None:
    provider_path, zone_path = _files(tmp_path, provider_table(keys), zone_table(keys))
    args = ["provider", "check", str(provider_path), "--deliverability", "--zone", str(zone_path)]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["verdict"] == "PASS"
    assert [(f["check"], f["verdict"]) for f in document["checks"]] == [
        (check, "PASS") for check in CHECKS
    ]


def test_a_warning_alone_exits_0(tmp_path: Path, keys: Keys) -> None:
    zone = zone_table(keys, {f"_dmarc.{DOMAIN}": ["v=DMARC1; p=none"]})
    provider_path, zone_path = _files(tmp_path, provider_table(keys), zone)
    args = ["provider", "check", str(provider_path), "--deliverability", "--zone", str(zone_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Verdict: WARN (0 FAIL, 1 WARN)" in result.output


def test_a_bad_zone_file_is_one_line_exit_2(tmp_path: Path, keys: Keys) -> None:
    provider_path, zone_path = _files(tmp_path, provider_table(keys), {"authentication": {}})
    args = ["provider", "check", str(provider_path), "--deliverability", "--zone", str(zone_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "authentication.client_ip" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--deliverability"], "--deliverability needs --zone"),
        (["--json"], "--json is only used with --deliverability"),
        (["--zone", "z.toml"], "--zone is only used with --deliverability"),
        (["--deliverability", "--esp", "127.0.0.1:25"], "--esp and --esp-api go together"),
        (
            ["--deliverability", "--zone", "z.toml", "--esp", "h:1", "--esp-api", "http://h"],
            "give --zone or --esp, not both",
        ),
        (["--deliverability", "--esp", "nohost", "--esp-api", "http://h"], "is not HOST:PORT"),
        (["--esp", "h:1"], "--esp is only used with --deliverability"),
    ],
)
def test_deliverability_and_esp_options_go_together(
    tmp_path: Path, keys: Keys, extra: list[str], message: str
) -> None:
    provider_path, _ = _files(tmp_path, provider_table(keys), zone_table(keys))
    result = CliRunner().invoke(main, ["provider", "check", str(provider_path), *extra])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(
    ("changes", "receiver_url", "warned"),
    [
        ({"preference_center_url": "http://acme.example/u?e={email}"}, None, True),
        ({}, None, False),
        ({"preference_center": "clevertap", "preference_center_url": None}, "http://r:8080", True),
        ({"preference_center": "clevertap", "preference_center_url": None}, "https://r", False),
    ],
)
def test_offline_check_warns_on_a_plain_http_preference_link(
    tmp_path: Path, keys: Keys, changes: dict, receiver_url: str | None, warned: bool
) -> None:
    """Before, `provider check --offline` passed an http:// link silently; a WARN keeps exit 0
    (local setups serve the receiver over http), `--deliverability` makes it a FAIL."""
    provider_path, _ = _files(tmp_path, provider_table(keys, **changes), zone_table(keys))
    args = ["provider", "check", str(provider_path), "--offline"]
    if receiver_url is not None:
        args += ["--receiver-url", receiver_url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert ("warning: acme: List-Unsubscribe has http://" in result.output) == warned


@pytest.mark.e2e
def test_esp_mode_sends_the_probe_and_finds_it_by_its_meta(tmp_path: Path, keys: Keys) -> None:
    """Through a real fake ESP and its API: the probe is sent over SMTP, signed by the session,
    and found in GET /messages by its meta. A scenario without [authentication] gives no
    verdicts, which is one line, exit 2, saying so."""
    scenario = tmp_path / "scenario.toml"
    scenario.write_text('name = "probe"\n[outcomes]\ndelivered = 1.0\n')
    provider_path, _ = _files(tmp_path, provider_table(keys), zone_table(keys))
    with (
        FakeESP(scenario, "http://127.0.0.1:9/callback", tls="none") as esp,
        SpoolAPI(esp.spool_path) as api,
    ):
        args = ["--deliverability", "--esp", f"127.0.0.1:{esp.port}", "--esp-api", api.url]
        result = CliRunner().invoke(main, ["provider", "check", str(provider_path), *args])
        (message,) = esp.reader().messages()
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert "without Authentication-Results" in result.output
    assert "deliverability_probe" in message["meta"].split("|")
