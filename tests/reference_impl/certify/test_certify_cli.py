"""`bounceback certify --from-recording` grades a saved capture; exit 0 only if no MUST failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner

from reference_impl.certify.cli import _points_at
from reference_impl.certify.recording import Recording, callback_record, probe_record, run_record
from reference_impl.cli import main
from reference_impl.errors import EXIT_FAILED, EXIT_OK, EXIT_OPERATOR
from tests.reference_impl.certify import builders as b


def _plan_for(rec: Recording, path: Path) -> Path:
    probes = []
    for probe in rec.probes:
        entry = {"id": probe.id, "to": probe.to, "expect": probe.expect}
        if probe.respond:
            entry["respond"] = probe.respond
        probes.append(entry)
    data = {"name": "cli-test", "callback_url": "http://127.0.0.1:9/cb", "probe": probes}
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def _save(rec: Recording, path: Path) -> Path:
    records = [
        run_record(rec.run),
        *(probe_record(p) for p in rec.probes),
        *(callback_record(c) for c in rec.callbacks),
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in records), encoding="utf-8")
    return path


def _certify(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["certify", *args])
    return result.exit_code, result.output


def _grade(plan_from: Recording, recording: Recording, tmp_path: Path) -> tuple[int, str]:
    """`certify --from-recording`: a plan made from `plan_from`, grading `recording`."""
    return _certify(
        str(_plan_for(plan_from, tmp_path / "plan.toml")),
        "--report",
        str(tmp_path / "out"),
        "--from-recording",
        str(_save(recording, tmp_path / "rec.jsonl")),
    )


def test_clean_recording_certifies_with_exit_0_and_writes_the_report(tmp_path: Path) -> None:
    rec = b.well_behaved()
    code, output = _grade(rec, rec, tmp_path)
    assert code == EXIT_OK, output
    assert "CERTIFIED" in output and "retry-after-500" in output
    assert (tmp_path / "out" / "index.html").is_file()
    assert json.loads((tmp_path / "out" / "report.json").read_text())["passed"] is True


def test_failed_must_check_exits_1_and_names_it(tmp_path: Path) -> None:
    rec = b.well_behaved()
    rec = b.replace_bodies(
        rec,
        lambda d: {
            **d,
            "events": {"failed": [{**e, "email": "x@y.test"} for e in d["events"]["failed"]]},
        },
    )
    code, output = _grade(rec, rec, tmp_path)
    assert code == EXIT_FAILED
    assert "NOT CERTIFIED" in output and "email-matches-recipient" in output
    junit = (tmp_path / "out" / "junit.xml").read_text()
    assert 'name="email-matches-recipient"' in junit and "<failure" in junit


def test_recording_from_another_plan_is_refused_with_exit_2(tmp_path: Path) -> None:
    rec = b.well_behaved()
    other = b.recording([b.probe(0, "zzz", "z@z.test", "spam")], [])
    code, output = _grade(other, rec, tmp_path)
    assert code == EXIT_OPERATOR
    assert "probe 'hard' is in the recording but not in the plan" in output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--report", "OUT"], "needs --listen"),
        (["--report", "OUT", "--listen", "localhost"], "is not HOST:PORT"),
        (["--report", "OUT", "--listen", "127.0.0.1:99999"], "is not HOST:PORT"),
    ],
)
def test_bad_options_exit_2_with_a_clear_error(tmp_path: Path, args: list[str], words: str) -> None:
    plan = _plan_for(b.well_behaved(), tmp_path / "plan.toml")
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    code, output = _certify(str(plan), *args)
    assert code == EXIT_OPERATOR and words in output


def test_invalid_plan_exits_2_naming_the_key(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('name = "x"\ncallback_url = "http://a/b"\n', encoding="utf-8")
    code, output = _certify(str(plan), "--report", str(tmp_path / "out"), "--from-recording", "x")
    assert code == EXIT_OPERATOR and "probe: at least one [[probe]]" in output


def test_corrupt_recording_exits_2_naming_the_line(tmp_path: Path) -> None:
    plan = _plan_for(b.well_behaved(), tmp_path / "plan.toml")
    bad = tmp_path / "rec.jsonl"
    bad.write_text('{"kind": "run"}\n', encoding="utf-8")
    code, output = _certify(
        str(plan), "--report", str(tmp_path / "o"), "--from-recording", str(bad)
    )
    assert code == EXIT_OPERATOR and "line 1" in output


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8026/callback", True),
        ("http://127.0.0.1:8027/callback", False),
        ("https://cb.example.com/callback", False),
    ],
)
def test_callback_url_pointing_elsewhere_is_noticed(url: str, expected: bool) -> None:
    assert _points_at(url, "127.0.0.1", 8026) is expected


def test_certify_takes_a_shipped_plan_by_name(tmp_path: Path) -> None:
    """A plan can be named as shipped (an installed user has no scenarios/ folder); a typo gets
    the closest plan's name and exit 2, before anything is sent."""
    code, output = _certify("certification/fake-esp", "--report", str(tmp_path), "--listen", "x")
    assert "Plan fake-esp:" in output
    assert code == EXIT_OPERATOR, "then stops at the bad --listen"
    code, output = _certify("certification/fake", "--report", str(tmp_path))
    assert code == EXIT_OPERATOR
    assert "did you mean 'certification/fake-esp'?" in output
