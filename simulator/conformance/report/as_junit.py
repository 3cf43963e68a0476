"""`junit.xml`: one test suite per receiver, one test case per requirement.

Only what fails the run is a `<failure>`: a MUST not met (FAIL), or a requirement listed in
--expected-failures that passed (the list is stale). NON-STRICT and INFORMATIONAL are passed test
cases whose `<system-out>` says what the receiver did: the check ran, and a CI dashboard that
counted them as skipped would say it had not. A check that could not run (no state read API) is
`<skipped>`, and so is an expected failure, as pytest reports an xfail. So the number of failures
is zero exactly when the command exits 0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from simulator.conformance.fuzz import FuzzResult
from simulator.conformance.grading import ConformRun, Outcome, ReceiverResult
from simulator.conformance.report.about import bounceback_version
from simulator.conformance.requirements import Requirement
from simulator.protocol.difference import render

STALE = "listed in --expected-failures but passed: remove it from the list"
EXPECTED = "expected failure (listed in --expected-failures)"


def outcome_text(outcome: Outcome) -> str:
    """The failure reports of an outcome, as the terminal prints them."""
    parts = [failure.report() for failure in outcome.failures]
    if outcome.error:
        parts.append(f"the check crashed: {outcome.error}")
    return "\n\n".join(parts)


def _case(
    suite: ET.Element, requirement: Requirement, classname: str, seconds: float
) -> ET.Element:
    return ET.SubElement(
        suite,
        "testcase",
        classname=classname,
        name=requirement.label,
        time=f"{seconds:.3f}",
    )


def _properties(parent: ET.Element, values: dict[str, str]) -> None:
    properties = ET.SubElement(parent, "properties")
    for name, value in values.items():
        ET.SubElement(properties, "property", name=name, value=value)


def _outcome_case(suite: ET.Element, receiver: ReceiverResult, outcome: Outcome) -> None:
    requirement = outcome.requirement
    level = requirement.level_for(outcome.strict).value
    case = _case(suite, requirement, f"bounceback.conform.{level}", outcome.seconds)
    _properties(
        case,
        {
            "requirement": requirement.id,
            "level": level,
            "grade": outcome.shown,
            "source": requirement.source.kind.value,
            "quote": requirement.quote,
        },
    )
    text = outcome_text(outcome)
    if outcome.stale:
        ET.SubElement(case, "failure", message=f"{requirement.id}: {STALE}", type="STALE")
    elif outcome.blocking:
        first = outcome.failures[0].differences if outcome.failures else []
        message = render(first[:1]).strip() or (outcome.error or "")
        failure = ET.SubElement(
            case, "failure", message=f"{requirement.id} FAIL: {message}", type=outcome.shown
        )
        failure.text = text
    elif outcome.grade is None:
        ET.SubElement(case, "skipped", message=outcome.skipped or "")
    elif outcome.expected_failure:
        ET.SubElement(case, "skipped", message=f"{outcome.shown}: {EXPECTED}")
    if text or outcome.grade is not None:
        ET.SubElement(case, "system-out").text = f"{outcome.shown}\n{text}".strip()


def receiver_suite(run: ConformRun, receiver: ReceiverResult) -> ET.Element:
    outcomes = receiver.outcomes
    suite = ET.Element(
        "testsuite",
        name=f"bounceback conform {receiver.url}",
        tests=str(len(outcomes)),
        failures=str(sum(1 for o in outcomes if o.blocking)),
        errors="0",
        skipped=str(
            sum(1 for o in outcomes if not o.blocking and (o.grade is None or o.expected_failure))
        ),
        timestamp=run.started_iso,
        time=f"{receiver.seconds:.3f}",
    )
    _properties(
        suite,
        {
            "bounceback_version": run.version,
            "url": receiver.url,
            "state_url": receiver.state_url or "",
            "seed": str(run.seed),
            "strict": str(run.strict).lower(),
            "started_at": run.started_iso,
        },
    )
    for outcome in outcomes:
        _outcome_case(suite, receiver, outcome)
    return suite


def render_junit(run: ConformRun) -> str:
    root = ET.Element(
        "testsuites",
        name="bounceback conform",
        tests=str(sum(len(r.outcomes) for r in run.receivers)),
        failures=str(sum(1 for r in run.receivers for o in r.outcomes if o.blocking)),
    )
    for receiver in run.receivers:
        root.append(receiver_suite(run, receiver))
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def fuzz_junit(results: list[FuzzResult], url: str, seed: int) -> str:
    """`bounceback fuzz --junit`: one test case per property; every failed property is a
    `<failure>`, whatever its level, as the command exits 1 on any failure."""
    suite = ET.Element(
        "testsuite",
        name=f"bounceback fuzz {url}",
        tests=str(len(results)),
        failures=str(sum(1 for r in results if r.failed)),
        errors="0",
        skipped="0",
        timestamp=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    _properties(suite, {"bounceback_version": bounceback_version(), "url": url, "seed": str(seed)})
    for result in results:
        case = _case(suite, result.requirement, "bounceback.fuzz", 0.0)
        _properties(case, {"requirement": result.requirement.id, "examples": str(result.examples)})
        if result.failed:
            text = "\n\n".join(f.report() for f in result.failures) or str(result.error)
            failure = ET.SubElement(
                case, "failure", message=f"{result.requirement.id} failed", type="FAIL"
            )
            failure.text = text
        ET.SubElement(
            case, "system-out"
        ).text = f"{result.examples} examples in {result.rounds} round(s), seed {seed}"
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
