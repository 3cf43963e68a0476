"""Certification end to end with the fake ESP playing the vendor: real SMTP in, real HTTP out.

A well-behaved vendor certifies clean; each misbehaving vendor (scenario files under
scenarios/certification/vendors/) fails exactly the check made for it.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner
from rich.console import Console

from reference_impl.certify import checks as c
from reference_impl.certify.checks import Certification
from reference_impl.certify.plan import Plan, ProbeSpec, load_plan
from reference_impl.certify.recording import Recording
from reference_impl.certify.run import live_run
from reference_impl.cli import main
from reference_impl.errors import EXIT_OK
from simulator.esp.mangling import python_email
from simulator.esp.server import FakeESP

ROOT = Path(__file__).resolve().parents[3]
PLANS = ROOT / "scenarios" / "certification"
VENDORS = PLANS / "vendors"

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _plan(tmp_path: Path, name: str, esp_port: int, listen_port: int, **timing: float) -> Plan:
    provider = tmp_path / "provider.toml"
    provider.write_text(
        tomli_w.dumps(
            {
                "nickname": "fake-esp",
                "host": "127.0.0.1",
                "port": esp_port,
                "scheme": "smtp",
                "from_address": "cert@bounceback.test",
                "from_name": "bounceback certification",
                "timeout": 10,
            }
        ),
        encoding="utf-8",
    )
    settings = {"deadline_seconds": 20.0, "settle_seconds": 0.5, "slow_response_seconds": 2.5}
    settings.update(timing)
    return replace(
        load_plan(PLANS / f"{name}.toml"),
        provider=provider,
        callback_url=f"http://127.0.0.1:{listen_port}/callback",
        **settings,
    )


def _certify(
    tmp_path: Path, vendor: str, plan_name: str = "fake-esp", **timing: float
) -> tuple[Certification, Recording]:
    """Run the plan live against the fake ESP playing `vendor`."""
    listen = free_port()
    url = f"http://127.0.0.1:{listen}/callback"
    with FakeESP(VENDORS / f"{vendor}.toml", url, tls="none", poll_seconds=0.05) as esp:
        plan = _plan(tmp_path, plan_name, esp.port, listen, **timing)
        recording = live_run(
            plan, "127.0.0.1", listen, tmp_path / "recording.jsonl", Console(quiet=True)
        )
    return c.grade(recording, deadline_at=recording.run.deadline_at), recording


def _not_passing(result: Certification) -> dict[str, str]:
    return {
        check.id: check.grade
        for check in result.checks
        if check.grade not in (c.PASS, c.INFORMATIONAL)
    }


def test_well_behaved_vendor_certifies_clean(tmp_path: Path) -> None:
    """Every check passes, metas of 74, 200 and 1200 characters included."""
    result, recording = _certify(tmp_path, "well-behaved")
    assert _not_passing(result) == {}, [(x.id, x.summary) for x in result.checks]
    assert result.passed
    assert result.check("retry-after-500").measurements["retry_delay_seconds"] > 0
    assert result.check("retry-after-timeout").measurements["retry_delay_seconds"] > 0
    lengths = sorted(len(p.meta) for p in recording.probes)
    assert lengths[-1] > 998 and any(78 < n <= 998 for n in lengths)
    exact = {e.probe_id for e in result.check("meta-byte-exact").evidence if e.grade == c.PASS}
    assert {"meta-74", "meta-200", "meta-1200"} <= exact


@pytest.mark.skipif(
    python_email("x" * 74) == "x" * 74,
    reason="this Python's email package no longer adds the gh-124452 leading space",
)
def test_vendor_folding_long_metas_fails_only_the_meta_check(tmp_path: Path) -> None:
    """The Python email package vendor (gh-124452 on 3.11): every meta of 61 to 77 characters,
    meta-74 among them, comes back with a leading space; longer ones come back exact."""
    result, recording = _certify(tmp_path, "folds-long-metas")
    assert _not_passing(result) == {"meta-byte-exact": c.FAIL}
    bad = [e for e in result.check("meta-byte-exact").evidence if e.grade == c.FAIL]
    folded = {p.id for p in recording.probes if 61 <= len(p.meta) <= 77}
    assert "meta-74" in folded
    assert {e.probe_id for e in bad} == folded
    assert all("leading space" in e.note and e.actual == " " + e.expected for e in bad)
    exact = {e.probe_id for e in result.check("meta-byte-exact").evidence if e.grade == c.PASS}
    assert {"meta-200", "meta-1200"} <= exact


def test_vendor_leaving_encoded_words_in_fails_only_the_meta_check(tmp_path: Path) -> None:
    """A vendor that never decodes RFC 2047 (`meta_encoded_words = "echo"`) loses meta-1200."""
    result, _ = _certify(tmp_path, "leaves-encoded-words")
    assert _not_passing(result) == {"meta-byte-exact": c.FAIL}
    bad = [e for e in result.check("meta-byte-exact").evidence if e.grade == c.FAIL]
    assert {e.probe_id for e in bad} == {"meta-1200"}
    assert all("RFC 2047" in e.note for e in bad)
    assert all(len(e.expected or "") == 1200 for e in bad)


def test_vendor_that_never_retries_is_non_strict_on_retry_after_500(tmp_path: Path) -> None:
    """Retrying is our reading of what ESPs do, not a sentence of the page: a SHOULD."""
    result, _ = _certify(tmp_path, "never-retries", deadline_seconds=4.0)
    assert _not_passing(result) == {"retry-after-500": c.NON_STRICT}
    assert result.passed


def test_vendor_reporting_spam_as_hard_bounce_fails_the_type_check(tmp_path: Path) -> None:
    result, _ = _certify(tmp_path, "spam-as-hard-bounce")
    assert _not_passing(result) == {"type-matches-outcome": c.FAIL}
    bad = [e for e in result.check("type-matches-outcome").evidence if e.grade == c.FAIL]
    assert {(e.probe_id, e.actual) for e in bad} == {("spam", "hard_bounce")}


def test_vendor_that_drops_events_gets_missing_on_the_deadline_check(tmp_path: Path) -> None:
    result, _ = _certify(tmp_path, "drops-events", deadline_seconds=4.0)
    assert _not_passing(result) == {"all-events-by-deadline": c.MISSING}
    missing = {e.probe_id for e in result.check("all-events-by-deadline").evidence}
    assert missing == {"soft", "unsubscribe"}


def test_vendor_sending_1001_events_in_one_call_fails_the_batch_limit(tmp_path: Path) -> None:
    result, recording = _certify(tmp_path, "oversize-batch", "batch-limit")
    assert _not_passing(result) == {"max-1000-events": c.FAIL}
    assert result.check("max-1000-events").measurements["largest_call"] == 1001
    # The fake ESP splits a refused 1001 in halves (PROTOCOL.md section 7): the check still fails.
    assert [cb.status for cb in recording.callbacks] == [400, 200, 200]


def test_certify_command_live_exits_0_for_the_well_behaved_vendor(tmp_path: Path) -> None:
    listen = free_port()
    url = f"http://127.0.0.1:{listen}/callback"
    with FakeESP(VENDORS / "well-behaved.toml", url, tls="none", poll_seconds=0.05) as esp:
        plan = _plan(tmp_path, "fake-esp", esp.port, listen)
        data = {
            "name": plan.name,
            "provider": str(plan.provider),
            "callback_url": plan.callback_url,
            "deadline_seconds": plan.deadline_seconds,
            "settle_seconds": plan.settle_seconds,
            "slow_response_seconds": plan.slow_response_seconds,
            "label": plan.label,
            "probe": [{k: v for k, v in vars_of(p).items() if v is not None} for p in plan.probes],
        }
        plan_file = tmp_path / "plan.toml"
        plan_file.write_text(tomli_w.dumps(data), encoding="utf-8")
        result = CliRunner().invoke(
            main,
            [
                "certify",
                str(plan_file),
                "--listen",
                f"127.0.0.1:{listen}",
                "--report",
                str(tmp_path / "report"),
            ],
        )
    assert result.exit_code == EXIT_OK, result.output
    assert "CERTIFIED" in result.output
    assert {p.name for p in (tmp_path / "report").iterdir()} == {
        "index.html",
        "report.json",
        "junit.xml",
        "recording.jsonl",
    }


def vars_of(probe: ProbeSpec) -> dict[str, object]:
    return {
        "id": probe.id,
        "to": probe.to,
        "expect": probe.expect,
        "meta_length": probe.meta_length,
        "respond": probe.respond,
    }
