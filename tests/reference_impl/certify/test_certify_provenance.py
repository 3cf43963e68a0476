"""Every certification check knows where its requirement comes from (issue 11), and says so.

A `page` check quotes the vendor's page verbatim (checked against the page where it is at hand:
/work/shared/spec or `<repo>/../shared/spec`); a `reading` quotes docs/PROTOCOL.md and is at most
a SHOULD; a `decision` quotes docs/certification.md and is informational, never failed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from reference_impl.certify import checks as c
from reference_impl.certify.provenance import (
    DECISION,
    PAGE,
    READING,
    Provenance,
    check_level,
    reading,
)
from reference_impl.certify.report import write_report
from tests.reference_impl.certify import builders as b

ROOT = Path(__file__).resolve().parents[3]
PAGE_CANDIDATES = (
    Path("/work/shared/spec/generic-smtp-callbacks.txt"),
    ROOT.parent / "shared" / "spec" / "generic-smtp-callbacks.txt",
)
SOURCE_PAGE = next((path for path in PAGE_CANDIDATES if path.is_file()), None)


def _flat(text: str) -> str:
    return " ".join(text.split())


LEVEL_RULE = (
    "Only `page` rules and the invariants above may fail another team's receiver as a MUST; a "
    "`reading` is at most a SHOULD; a `decision` is informational."
)
"""PROTOCOL.md section 4, word for word. Certification has no invariant among its checks (the
1000-event limit is a sentence of the page), so here a MUST is a `page` check, full stop."""


def test_every_level_obeys_its_provenance_over_the_whole_table() -> None:
    """PROTOCOL.md section 4's rule over every check at once, written apart from `check_level`."""
    assert _flat(LEVEL_RULE) in _flat((ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8"))
    allowed = {PAGE: {c.MUST, c.SHOULD, c.INFO}, READING: {c.SHOULD, c.INFO}, DECISION: {c.INFO}}
    wrong = {
        check.id: f"a {check.provenance.kind} check graded {check.level}"
        for check in c.CHECKS
        if check.level not in allowed[check.provenance.kind]
    }
    assert wrong == {}


def test_the_documented_table_shows_each_level_and_source() -> None:
    """docs/certification.md's check table says what `CHECKS` says, row for row."""
    text = (ROOT / c.CERTIFICATION_DOC).read_text(encoding="utf-8")
    rows = {
        cells[0].strip("`"): (cells[1], cells[2])
        for line in text.splitlines()
        if line.startswith("| `")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
        if len(cells) == 4 and cells[1] in c.LEVELS
    }
    assert rows == {check.id: (check.level, check.provenance.kind) for check in c.CHECKS}


def test_a_reading_cannot_be_a_must() -> None:
    with pytest.raises(ValueError, match="at most SHOULD"):
        check_level("x", c.MUST, reading("anything", 4))


@pytest.mark.skipif(SOURCE_PAGE is None, reason="the vendor's page is not at hand here")
@pytest.mark.parametrize(
    "check", [x for x in c.CHECKS if x.provenance.kind == PAGE], ids=lambda check: check.id
)
def test_every_page_quote_is_verbatim_in_the_source_page(check: c.CheckDef) -> None:
    assert SOURCE_PAGE is not None
    assert check.provenance.quote in SOURCE_PAGE.read_text(encoding="utf-8"), check.id


@pytest.mark.parametrize(
    "check", [x for x in c.CHECKS if x.provenance.kind == READING], ids=lambda check: check.id
)
def test_every_reading_quote_is_in_protocol_md(check: c.CheckDef) -> None:
    text = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    assert _flat(check.provenance.quote) in _flat(text), check.id
    assert check.provenance.source.startswith("docs/PROTOCOL.md section ")


@pytest.mark.parametrize(
    "check", [x for x in c.CHECKS if x.provenance.kind == DECISION], ids=lambda check: check.id
)
def test_every_decision_is_written_in_the_doc_it_names(check: c.CheckDef) -> None:
    text = (ROOT / check.provenance.source).read_text(encoding="utf-8")
    assert _flat(check.provenance.quote) in _flat(text), check.id


def test_failures_carry_the_provenance_in_the_result_report_and_message(tmp_path: Path) -> None:
    rec = b.replace_bodies(
        b.well_behaved(),
        lambda d: {
            **d,
            "events": {"failed": [{**e, "email": "x@y.test"} for e in d["events"]["failed"]]},
        },
    )
    result = c.grade(rec, deadline_at=b.T0 + b.DEADLINE)
    failed = result.check("email-matches-recipient")
    assert failed.grade == c.FAIL
    assert isinstance(failed.provenance, Provenance) and failed.provenance.kind == PAGE
    assert f'page: "{failed.provenance.quote}"' in failed.failure_message
    write_report(result, tmp_path)
    document = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    (entry,) = [x for x in document["checks"] if x["id"] == "email-matches-recipient"]
    assert entry["provenance"] == {
        "kind": PAGE,
        "quote": failed.provenance.quote,
        "source": failed.provenance.source,
    }


def test_a_decision_check_is_reported_never_failed() -> None:
    probes = b.standard_probes()
    rec = b.well_behaved(probes)
    first = rec.callbacks[0]
    again = replace(first, seq=9, arrived_at=first.arrived_at + 20)
    result = c.grade(replace(rec, callbacks=(*rec.callbacks, again)), deadline_at=b.T0 + 60)
    check = result.check("no-unprompted-duplicates")
    assert (check.level, check.grade) == (c.INFO, c.INFORMATIONAL)
    assert check.evidence and result.passed
