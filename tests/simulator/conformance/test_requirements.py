"""Every requirement knows where it comes from, and its quote is really there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.conformance.requirements import (
    CATALOGUE,
    DECISION_FILE,
    PAGE_FILE,
    READING_FILE,
    Grade,
    Level,
    Requirement,
    Source,
    SourceKind,
    allowed,
)

REPO = Path(__file__).resolve().parents[3]


def _page() -> Path | None:
    """The source page, `shared/spec/` beside the checkout (or beside a folder holding it)."""
    for folder in REPO.parents:
        candidate = folder / "shared" / "spec" / PAGE_FILE
        if candidate.is_file():
            return candidate
    return None


def _normal(text: str) -> str:
    """Whitespace collapsed: the page's line breaks fall inside sentences."""
    return re.sub(r"\s+", " ", text).strip()


def _source_text(kind: SourceKind) -> str:
    if kind is SourceKind.PAGE:
        page = _page()
        if page is None:
            pytest.skip(f"the source page {PAGE_FILE} is not in any shared/spec/ above {REPO}")
        return page.read_text(encoding="utf-8")
    return (REPO / Source(kind, "").file).read_text(encoding="utf-8")


@pytest.mark.parametrize("requirement", CATALOGUE, ids=[r.id for r in CATALOGUE])
def test_every_quote_appears_verbatim_in_its_source(requirement: Requirement) -> None:
    """A page quote is in the page, a reading in docs/PROTOCOL.md, a decision in its doc."""
    text = _normal(_source_text(requirement.source.kind))
    for fragment in requirement.source.fragments:
        assert _normal(fragment) in text, (
            f"{requirement.id}: not in {requirement.source.file}: {fragment!r}"
        )


LEVEL_RULE = (
    "Only `page` rules and the invariants above may fail another team's receiver as a MUST; a "
    "`reading` is at most a SHOULD; a `decision` is informational."
)
"""PROTOCOL.md section 4, word for word: the rule every requirement's level obeys."""


def _invariants() -> str:
    """Section 4's invariants in docs/PROTOCOL.md: the only readings that may be a MUST."""
    text = _normal((REPO / READING_FILE).read_text(encoding="utf-8"))
    start = text.index("Invariant:")
    return text[start : text.index("Bodies are strict JSON", start)]


def _breaks_the_rule(requirement: Requirement, invariants: str) -> str | None:
    """Why `requirement`'s level claims more than its source allows, or None if it does not.

    Written apart from `allowed`, so a fault in the catalogue's own guard cannot hide here.
    """
    source, level = requirement.source, requirement.level
    if source.invariant and not all(_normal(f) in invariants for f in source.fragments):
        return "flagged invariant, but its quote is not among section 4's invariants"
    if level is Level.MUST and source.kind is not SourceKind.PAGE and not source.invariant:
        return f"a MUST from a {source.kind.value}"
    if source.kind is SourceKind.DECISION and level is not Level.INFORMATIONAL:
        return f"a decision graded {level.value}"
    return None


def test_every_level_obeys_its_provenance_over_the_whole_catalogue() -> None:
    """PROTOCOL.md section 4: only the page and the invariants make a MUST; a reading is at most
    a SHOULD; a decision is informational. Checked over every requirement at once."""
    assert _normal(LEVEL_RULE) in _normal((REPO / READING_FILE).read_text(encoding="utf-8"))
    invariants = _invariants()
    wrong = {
        requirement.id: why
        for requirement in CATALOGUE
        if (why := _breaks_the_rule(requirement, invariants)) is not None
    }
    assert wrong == {}
    assert all(allowed(r.level, r.source) for r in CATALOGUE)


def test_the_documented_table_shows_each_level_and_source() -> None:
    """docs/conformance.md's requirement table says what the catalogue says, row for row."""
    text = (REPO / DECISION_FILE).read_text(encoding="utf-8")
    rows = {
        cells[0]: (cells[1], cells[2], cells[3])
        for line in text.splitlines()
        if line.startswith("| CB-")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    for requirement in CATALOGUE:
        source = requirement.source
        kind = source.kind.value + (", invariant" if source.invariant else "")
        assert rows.get(requirement.id) == (requirement.level.value, kind, requirement.title)
    assert set(rows) == {r.id for r in CATALOGUE}


def test_the_in_repo_reading_keeps_every_statement_of_the_shared_one() -> None:
    """docs/PROTOCOL.md (shipped in the wheel) is the shared PROTOCOL.md plus the project's own
    detail: every line of the shared file is in it, but the one saying where the source lies."""
    page = _page()
    if page is None or not (page.parent / "PROTOCOL.md").is_file():
        pytest.skip(f"the shared PROTOCOL.md is not in any shared/spec/ above {REPO}")
    shared = (page.parent / "PROTOCOL.md").read_text(encoding="utf-8").splitlines()
    ours = set((REPO / READING_FILE).read_text(encoding="utf-8").splitlines())
    missing = [line for line in shared if line not in ours and "beside this file" not in line]
    assert missing == []


def test_the_rule_refuses_a_reading_as_must() -> None:
    assert not allowed(Level.MUST, Source(SourceKind.READING, "x"))
    assert allowed(Level.MUST, Source(SourceKind.READING, "x", invariant=True))
    assert not allowed(Level.SHOULD, Source(SourceKind.DECISION, "x"))


def test_the_points_the_issue_names_are_not_musts() -> None:
    """The meta layout is a reading; wording and check order are decisions."""
    by_id = {r.id: r for r in CATALOGUE}
    assert by_id["CB-4.19"].source.kind is SourceKind.READING
    assert by_id["CB-4.19"].level is not Level.MUST
    for requirement_id in ("CB-4.12", "CB-4.14", "CB-4.15"):
        assert by_id[requirement_id].level is Level.INFORMATIONAL


def test_grades() -> None:
    """PASS when met; FAIL, NON-STRICT, INFORMATIONAL by level; strict promotes readings only."""
    by_id = {r.id: r for r in CATALOGUE}
    assert by_id["CB-4.2"].grade(met=True) is Grade.PASS
    assert by_id["CB-4.2"].grade(met=False) is Grade.FAIL
    assert by_id["CB-4.17"].grade(met=False) is Grade.NON_STRICT
    assert by_id["CB-4.17"].grade(met=False, strict=True) is Grade.FAIL
    assert by_id["CB-4.19"].grade(met=False) is Grade.INFORMATIONAL
    assert by_id["CB-4.19"].grade(met=False, strict=True) is Grade.FAIL
    assert by_id["CB-4.14"].grade(met=False, strict=True) is Grade.INFORMATIONAL


def test_the_listing_shows_level_and_source() -> None:
    """The requirement list (`conform --list`, `--help`) names each source kind."""
    for requirement in CATALOGUE:
        line = requirement.listing()
        assert line.startswith(requirement.id)
        assert requirement.source.kind.value in line
        assert requirement.level.value in line
