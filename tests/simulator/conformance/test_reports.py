"""`bounceback conform --report`, several receivers side by side, and `fuzz --junit/--replay`,
run as a shell runs them against real receivers on loopback ports (issue 11).

Each run selects a few fast requirements with `-k`: what is tested is the report, not the
checks (tests/simulator/conformance/test_checks.py covers those).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

from reference_impl.receiver.server import RunningReceiver
from simulator.conformance.requirements import BY_ID
from tests.simulator.conformance.processes import CLI, independent_receiver, run

FAST = "CB-3.1 or CB-3.3 or CB-4.3 or CB-4.12 or CB-4.16 or CB-5.1"
"""Six quick requirements: a MUST the wrong-total bug breaks (CB-3.3, CB-4.3), a MUST it keeps
(CB-3.1), an INFORMATIONAL decision the independent receiver words differently (CB-4.12), and
CB-5.1, which needs a state read API (skipped for a URL given without one)."""
FAST_IDS = ["CB-3.1", "CB-3.3", "CB-4.3", "CB-4.12", "CB-4.16", "CB-5.1"]
SEED = "4242"


def _report(folder: Path) -> tuple[str, dict, ET.Element]:
    html = (folder / "index.html").read_text(encoding="utf-8")
    data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    junit = ET.parse(folder / "junit.xml").getroot()
    return html, data, junit


def test_report_folder_has_html_json_and_junit_that_agree(tmp_path: Path) -> None:
    """Issue 11: one run against a buggy receiver writes index.html (self-contained, each id and
    grade), report.json (grades, version, URL, UTC time, seed) and junit.xml (one failure per
    MUST not met)."""
    with independent_receiver(bug="wrong-total") as base:
        url = f"{base}/callback"
        result = run(
            [*CLI, "conform", url, "-k", FAST, "--seed", SEED, "--report", "out"], tmp_path
        )
    assert result.returncode == 1, result.stdout + result.stderr
    html, data, junit = _report(tmp_path / "out")

    grades = {r["id"]: r["grade"] for r in data["receivers"][0]["requirements"]}
    assert grades == {
        "CB-3.1": "PASS",
        "CB-3.3": "FAIL",
        "CB-4.3": "FAIL",
        "CB-4.12": "INFORMATIONAL",
        "CB-4.16": "PASS",
        "CB-5.1": "SKIPPED",
    }
    assert data["seed"] == int(SEED) and data["targets"] == [url]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["started_at"])
    assert data["bounceback_version"] and data["passed"] is False
    failed = next(r for r in data["receivers"][0]["requirements"] if r["id"] == "CB-4.3")
    (failure,) = failed["failures"]
    assert {"field": "body.TOTAL_EVENTS", "expected": "3", "got": "4"} in failure["differences"]
    assert failure["exchange"]["replay"].startswith("printf ")

    assert "<link" not in html and "<script" not in html and "src=" not in html
    assert "<style>" in html and url in html and SEED in html and data["started_at"] in html
    for requirement_id, grade in grades.items():
        row = re.search(rf'<tr data-requirement="{re.escape(requirement_id)}">(.*?)</tr>', html)
        assert row and f">{grade}</a>" in row.group(1), requirement_id
    assert "body.TOTAL_EVENTS" in html and "curl -sS" in html

    (suite,) = junit.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [BY_ID[i].label for i in FAST_IDS]
    failing = [c.get("name").split()[0] for c in cases if c.find("failure") is not None]
    assert failing == ["CB-3.3", "CB-4.3"] and suite.get("failures") == "2"
    skipped = [c.get("name").split()[0] for c in cases if c.find("skipped") is not None]
    assert skipped == ["CB-5.1"]
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties["seed"] == SEED and properties["url"] == url


def test_two_receivers_side_by_side_and_exit_1_when_one_fails_a_must(
    receiver: RunningReceiver, tmp_path: Path
) -> None:
    """Issue 11: the reference receiver and a buggy one in one run: both columns in the
    terminal table and the HTML, the buggy one NOT CONFORMANT, exit 1."""
    with independent_receiver(bug="wrong-total") as base:
        buggy = f"{base}/callback"
        args = [*CLI, "conform", receiver.callback_url, buggy, "-k", FAST, "--report", "out"]
        result = run(args, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    row = re.search(r"^CB-4\.3 +MUST +(\S+) +(\S+) +a missing meta", result.stdout, re.M)
    assert row and row.groups() == ("PASS", "FAIL"), result.stdout
    assert re.search(rf"^#1 {re.escape(receiver.callback_url)}: conformant", result.stdout, re.M)
    assert re.search(rf"^#2 {re.escape(buggy)}: NOT CONFORMANT", result.stdout, re.M)
    html, data, _ = _report(tmp_path / "out")
    assert [r["passed"] for r in data["receivers"]] == [True, False]
    summary = re.search(r'<tr data-requirement="CB-4\.3">(.*?)</tr>', html)
    assert summary and re.findall(r">(PASS|FAIL)</a>", summary.group(1)) == ["PASS", "FAIL"]
    seed = re.search(r"seed (\d+) \(--seed \1 repeats it\)", result.stderr)
    assert seed and data["seed"] == int(seed.group(1)), "a seed is picked and printed"


def test_each_failure_once_as_field_expected_got_with_no_test_author_advice(
    tmp_path: Path,
) -> None:
    """Issue 11: a log gets whole lines; each failure is printed once, as field, expected, got,
    with its replay line; nothing for pytest authors, no temporary paths, nothing left behind.
    CB-4.9 used to print `expected '0 + 0', got 1` besides the TOTAL_EVENTS row."""
    folder = tmp_path / "work"
    folder.mkdir()
    with independent_receiver(bug="wrong-total") as base:
        args = [*CLI, "conform", f"{base}/callback", "-k", "CB-4.3 or CB-4.9", "-v"]
        result = run([*args, "--seed", SEED, "--profile", "dev"], folder, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    for fragment in ("reproduce_failure", "test function", "Failing test case", "/tmp", ".py::"):
        assert fragment not in output
    assert output.count("CB-4.9 [MUST] the counts invariant holds for every 200: FAIL") == 1
    rows = re.findall(r"^  body\.TOTAL_EVENTS: expected (\d+), got (\d+)$", result.stdout, re.M)
    assert len(rows) == 2 and rows[0] == ("3", "4"), result.stdout
    assert int(rows[1][1]) == int(rows[1][0]) + 1, "CB-4.9: the events sent, then the total"
    assert "expected '" not in result.stdout.split("CB-4.9 [MUST]")[1].split("replay:")[0]
    assert len(re.findall(r"^replay: printf ", result.stdout, re.M)) == 2
    assert re.search(
        r"^\[2/2\] #1 CB-4\.9 .*: FAIL \([0-9.]+ s, \d+ examples\)$", result.stderr, re.M
    )
    assert "…" not in result.stderr
    assert list(folder.iterdir()) == [], "no report folder, no .hypothesis/"


def test_strict_promotes_a_reading_to_a_must(tmp_path: Path) -> None:
    """Issue 11: `--strict` wired in: CB-3.6 (a reading, SHOULD) fails the run only with it."""
    with independent_receiver(bug="wrong-total") as base:
        args = [*CLI, "conform", f"{base}/callback", "-k", "CB-3.6"]
        lenient, strict = run(args, tmp_path), run([*args, "--strict"], tmp_path)
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    assert re.search(r"^CB-3\.6 +SHOULD +NON-STRICT ", lenient.stdout, re.M)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert re.search(r"^CB-3\.6 +MUST +FAIL ", strict.stdout, re.M)


def test_operator_errors_stop_before_any_check(receiver: RunningReceiver, tmp_path: Path) -> None:
    """Every URL is probed first: a 404 on the second stops the run, exit 2, one line."""
    result = run([*CLI, "conform", receiver.callback_url, f"{receiver.url}/nope"], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "HTTP 404" in result.stderr
    assert "CB-" not in result.stdout


def test_fuzz_saves_a_failure_that_replay_reproduces(tmp_path: Path) -> None:
    """Issue 11: fuzz saves the shrunk request with its requirement and seed, writes JUnit, and
    `fuzz --replay FILE URL` sends it again: FAIL on the buggy receiver, PASS on a correct one."""
    with independent_receiver(bug="500-on-bad-json") as base:
        url = f"{base}/callback"
        args = [*CLI, "fuzz", url, "--requirement", "CB-4.8", "--max-examples", "5"]
        found = run([*args, "--seed", SEED, "--junit", "fuzz.xml"], tmp_path)
        assert found.returncode == 1, found.stdout + found.stderr
        (saved,) = (tmp_path / "bounceback-failures").iterdir()
        record = json.loads(saved.read_text(encoding="utf-8"))
        assert record["requirement"] == "CB-4.8" and record["seed"] == int(SEED)
        replayed = run([*CLI, "fuzz", "--replay", str(saved), url], tmp_path)
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert "CB-4.8 no input ever gets a 5xx: FAIL, reproduced" in replayed.stdout
    assert "status: expected '<not 5xx>', got 500" in replayed.stdout
    suite = ET.parse(tmp_path / "fuzz.xml").getroot()
    assert suite.get("failures") == "1" and len(suite.findall("testcase/failure")) == 1
    seed = {p.get("name"): p.get("value") for p in suite.find("properties")}["seed"]
    assert seed == SEED
    with independent_receiver() as base:
        fixed = run([*CLI, "fuzz", "--replay", str(saved), f"{base}/callback"], tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "PASS, the saved failure no longer reproduces" in fixed.stdout


def test_fuzz_writes_no_failures_folder_when_nothing_fails(
    receiver: RunningReceiver, tmp_path: Path
) -> None:
    result = run(
        [*CLI, "fuzz", receiver.callback_url, "--requirement", "CB-4.9", "--max-examples", "5"],
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "bounceback-failures").exists()
