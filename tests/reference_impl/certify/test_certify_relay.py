"""Issue 11: a probe whose meta arrives broken by a relay, graded on whether it comes back whole.

A meta over 980 characters cannot travel on one header line; a relay (Postfix's
`smtp_line_length_limit`, 998) breaks the line with CRLF and a space. A meta never contains
whitespace, so a well-behaved vendor removes the folding whitespace; one that unfolds literally
(RFC 5322) echoes the meta with a space in it. `meta-whole-after-relay` (a SHOULD: our reading of
PROTOCOL.md) grades that, and `meta-byte-exact` is not charged twice.
"""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import tomli_w
from rich.console import Console

from reference_impl.certify import checks as c
from reference_impl.certify.plan import MIN_RELAY_META_LENGTH, PlanError, parse_plan
from reference_impl.certify.recording import parse_recording, probe_record
from reference_impl.certify.run import live_run
from reference_impl.certify.smtp import RELAY_LINE_LIMIT, relay_folded
from reference_impl.protocol.meta import HEADER_NAME
from simulator.esp.server import FakeESP
from tests.reference_impl.certify import builders as b

ROOT = Path(__file__).resolve().parents[3]
VENDORS = ROOT / "scenarios" / "certification" / "vendors"
RELAY = {"id": "relay", "to": "bounce+relay@sim.test", "expect": "hard_bounce"}


def _relay_probe(length: int = 1100) -> b.SentProbe:
    return replace(
        b.probe(20, "relay", "bounce+relay@sim.test", "hard_bounce", length=length), relay_fold=True
    )


def test_relay_fold_needs_a_meta_long_enough_for_a_relay_to_fold() -> None:
    base = {"name": "p", "callback_url": "http://127.0.0.1:9/cb"}
    with pytest.raises(
        PlanError, match=f"relay_fold: needs meta_length of at least {MIN_RELAY_META_LENGTH}"
    ):
        parse_plan({**base, "probe": [{**RELAY, "relay_fold": True, "meta_length": 900}]})
    plan = parse_plan({**base, "probe": [{**RELAY, "relay_fold": True, "meta_length": 1100}]})
    assert plan.probes[0].relay_fold


def test_the_header_is_broken_as_postfix_breaks_a_long_line() -> None:
    meta = _relay_probe().meta
    raw = relay_folded(HEADER_NAME, meta)
    lines = raw.split(b"\r\n")[:-1]
    assert len(lines) == 2 and all(len(line) <= RELAY_LINE_LIMIT for line in lines)
    assert lines[1].startswith(b" ")
    literal = b"".join(lines)[len(HEADER_NAME) + 2 :].decode()
    assert literal != meta and literal.replace(" ", "") == meta


def test_relay_fold_survives_the_recording_file() -> None:
    probe = _relay_probe()
    line = json.dumps(
        {"kind": "run", "format": 1, "plan_name": "p", "started_at": 1.0, "deadline_at": 2.0}
    )
    parsed = parse_recording([line, json.dumps(probe_record(probe))])
    assert parsed.probes == (probe,)


def _graded(echo: str) -> c.Certification:
    """A well-behaved vendor, but for the relay probe's meta, which comes back as `echo`."""
    relay = _relay_probe()

    def mangle(document: dict) -> dict:
        for item in document["events"]["failed"]:
            if item["meta"] == relay.meta:
                item["meta"] = echo
        return document

    rec = b.replace_bodies(b.well_behaved([*b.standard_probes(), relay]), mangle)
    return c.grade(rec, deadline_at=b.T0 + b.DEADLINE)


def test_a_meta_that_comes_back_whole_passes() -> None:
    result = _graded(_relay_probe().meta)
    assert result.check("meta-whole-after-relay").grade == c.PASS
    assert result.check("meta-byte-exact").grade == c.PASS


def test_a_meta_left_with_the_relay_space_is_non_strict_and_charged_once() -> None:
    meta = _relay_probe().meta
    spaced = meta[:980] + " " + meta[980:]
    result = _graded(spaced)
    relayed = result.check("meta-whole-after-relay")
    assert relayed.grade == c.NON_STRICT
    assert "whitespace inserted" in relayed.evidence[0].note
    assert relayed.evidence[0].actual == spaced
    assert result.check("meta-byte-exact").grade == c.PASS
    assert result.check("all-events-by-deadline").grade == c.PASS
    assert result.passed


def test_no_relay_probe_is_informational() -> None:
    result = c.grade(b.well_behaved(), deadline_at=b.T0 + b.DEADLINE)
    assert result.check("meta-whole-after-relay").grade == c.INFORMATIONAL


# --- live, through the fake ESP playing the vendor -------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _live(tmp_path: Path, vendor: str) -> c.Certification:
    listen = _free_port()
    url = f"http://127.0.0.1:{listen}/callback"
    with FakeESP(VENDORS / f"{vendor}.toml", url, tls="none", poll_seconds=0.05) as esp:
        provider = tmp_path / "provider.toml"
        provider.write_text(
            tomli_w.dumps(
                {
                    "nickname": "v",
                    "host": "127.0.0.1",
                    "port": esp.port,
                    "scheme": "smtp",
                    "from_address": "cert@bounceback.test",
                    "timeout": 10,
                }
            ),
            encoding="utf-8",
        )
        plan = parse_plan(
            {
                "name": "relay",
                "provider": str(provider),
                "callback_url": url,
                "deadline_seconds": 20,
                "settle_seconds": 0.5,
                "probe": [{**RELAY, "relay_fold": True, "meta_length": 1100}],
            }
        )
        recording = live_run(plan, "127.0.0.1", listen, tmp_path / "rec.jsonl", Console(quiet=True))
    return c.grade(recording, deadline_at=recording.run.deadline_at)


@pytest.mark.e2e
def test_a_well_behaved_vendor_returns_the_relayed_meta_whole(tmp_path: Path) -> None:
    """The fake ESP's default removes folding whitespace from the meta header (issue 11)."""
    assert _live(tmp_path, "well-behaved").check("meta-whole-after-relay").grade == c.PASS


@pytest.mark.e2e
def test_a_vendor_unfolding_literally_fails_the_relay_check_and_is_named(tmp_path: Path) -> None:
    """`meta_unfolding = "rfc5322"` (the folds-long-metas profile) keeps the relay's space, and
    certification does not pass it on `meta-whole-after-relay` (a SHOULD: non-strict)."""
    result = _live(tmp_path, "folds-long-metas")
    relayed = result.check("meta-whole-after-relay")
    assert relayed.grade == c.NON_STRICT, relayed.summary
    assert "whitespace inserted" in relayed.evidence[0].note
    assert result.check("meta-byte-exact").grade != c.FAIL
