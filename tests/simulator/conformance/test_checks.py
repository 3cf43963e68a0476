"""The checks pass on conforming receivers and each named bug fails the named requirement."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from simulator.conformance import checks
from simulator.conformance.context import ConformanceFailure, Context
from simulator.conformance.requirements import BY_ID, CATALOGUE, Grade


def test_every_catalogued_requirement_has_a_check() -> None:
    """Catalogue and checks cannot drift: one check per requirement id, no orphan checks."""
    assert checks.missing_checks() == []
    assert set(checks.all_checks()) == set(BY_ID)


@pytest.mark.parametrize("requirement", CATALOGUE, ids=[r.id for r in CATALOGUE])
def test_conforming_toy_receiver_passes(requirement, toy_context: Callable[..., Context]) -> None:
    """A receiver written straight from PROTOCOL.md passes every requirement, MUST and SHOULD."""
    checks.run(requirement, toy_context())


@pytest.mark.parametrize("requirement", CATALOGUE, ids=[r.id for r in CATALOGUE])
def test_a_receiver_refusing_numbers_beyond_the_doubles_passes(
    requirement, toy_context: Callable[..., Context]
) -> None:
    """PROTOCOL.md section 4 compares numbers as doubles; a body holding one no double holds may
    be refused as unreadable (Go's parser does), so such a receiver fails nothing, MUST or SHOULD:
    the events every receiver must process never carry one (docs/conformance.md, 13)."""
    checks.run(requirement, toy_context("refuses_overflowing_numbers"))


@pytest.mark.parametrize("requirement", CATALOGUE, ids=[r.id for r in CATALOGUE])
def test_reference_receiver_passes_in_process(requirement, reference_context: Context) -> None:
    """The reference receiver, called through httpx.WSGITransport (no socket), conforms."""
    checks.run(requirement, reference_context)


CAUGHT = [
    ("soft_bounce_unsubscribes", "CB-5.2"),
    ("soft_bounce_unsubscribes", "CB-5.6"),
    ("refuses_unknown_keys", "CB-3.3"),
    ("partial_failure_is_400", "CB-4.2"),
    ("partial_failure_is_400", "CB-4.10"),
    ("accepts_1001", "CB-3.8"),
    ("limit_per_group", "CB-3.6"),
    ("stores_before_limit", "CB-3.9"),
    ("echo_drops_unknown_keys", "CB-4.2"),
    ("echo_drops_unknown_keys", "CB-4.10"),
    ("reversed_unprocessed", "CB-4.10"),
    ("processed_equals_total", "CB-4.9"),
    ("crash_on_list_type", "CB-4.8"),
    ("crash_on_list_type", "CB-4.4"),
    ("double_applies_duplicates", "CB-5.5"),
    ("attributes_by_email", "CB-5.1"),
    ("plain_text_errors", "CB-4.6"),
    ("custom_email_message", "CB-4.12"),
    ("lenient_meta", "CB-4.19"),
    ("perl_numbers", "CB-4.20"),
    ("infinity_echo", "CB-4.11"),
]


@pytest.mark.parametrize(("bug", "requirement_id"), CAUGHT)
def test_misbehaving_receiver_fails_the_named_check(
    bug: str, requirement_id: str, toy_context: Callable[..., Context]
) -> None:
    """Each injected bug is caught by the requirement it breaks, with a full report."""
    with pytest.raises(ConformanceFailure) as caught:
        checks.run(BY_ID[requirement_id], toy_context(bug))
    failure = caught.value
    assert failure.requirement.id == requirement_id
    report = str(failure)
    assert report.startswith(f"{requirement_id} [{failure.requirement.level.value}]")
    assert failure.requirement.source.describe() in report, "the provenance is in every failure"
    assert failure.grade is failure.requirement.grade(met=False)
    assert failure.differences, "a failure must name at least one differing field"
    assert "differences (field: expected, got):" in report


def test_wording_bug_is_informational_and_leaves_the_must_green(
    toy_context: Callable[..., Context],
) -> None:
    """CB-4.12: an unusual email errorDescription is reported, never failed; CB-4.5 stays green."""
    ctx = toy_context("custom_email_message")
    checks.run(BY_ID["CB-4.5"], ctx)
    checks.run(BY_ID["CB-4.17"], ctx)
    with pytest.raises(ConformanceFailure, match=r"CB-4\.12") as caught:
        checks.run(BY_ID["CB-4.12"], ctx)
    assert caught.value.grade is Grade.INFORMATIONAL


def test_fewer_digits_in_an_echo_are_another_value_and_fail_the_invariant(
    toy_context: Callable[..., Context],
) -> None:
    """CB-4.20: numbers are compared as IEEE doubles, so a receiver printing them as JSON::PP does
    (15 digits) echoes other doubles: the unprocessed entries are not the failed events, a MUST.

    Only the numbers differ: CB-3.3, CB-4.2 and CB-4.11, which send none that 15 digits change,
    pass. (CB-4.10's generated events carry such numbers in keys the spec does not define too.)
    """
    for requirement_id in ("CB-3.3", "CB-4.2", "CB-4.11"):
        checks.run(BY_ID[requirement_id], toy_context("perl_numbers"))
    with pytest.raises(ConformanceFailure) as caught:
        checks.run(BY_ID["CB-4.20"], toy_context("perl_numbers"))
    assert caught.value.grade is Grade.FAIL
    fields = {row.field for row in caught.value.differences}
    assert fields and all(".x_n" in field for field in fields), fields


def test_the_reference_receiver_refusing_1e400_as_unreadable_passes(
    reference_context: Context,
) -> None:
    """CB-4.11: `1e400` has no double, so refusing the body as unreadable is right (PROTOCOL.md
    section 4 compares numbers as doubles; RFC 8259 lets a parser limit their range). The
    reference receiver does so; the model must not expect a 200 of it."""
    event = '{"type": "hard_bounce", "email": "a@example.com", "meta": null, "x_number": %s}'
    for literal in ("1e400", "-1e400"):
        content = ('{"version": "v2", "events": {"failed": [%s]}}' % (event % literal)).encode()
        exchange = checks.verify(reference_context, "CB-4.11", f"{literal} in a key", content)
        assert exchange.status == 400


def test_an_infinity_in_the_echo_is_not_json_and_fails_the_must(
    toy_context: Callable[..., Context],
) -> None:
    """CB-4.11: 1e400 read as a float and echoed as `Infinity` makes the reply not JSON."""
    with pytest.raises(ConformanceFailure) as caught:
        checks.run(BY_ID["CB-4.11"], toy_context("infinity_echo"))
    assert caught.value.grade is Grade.FAIL
    assert "Infinity is not JSON" in str(caught.value)


def test_lenient_meta_passes_the_page_and_fails_only_under_strict(
    toy_context: Callable[..., Context],
) -> None:
    """CB-4.10/CB-4.19: the meta layout is a reading; --strict makes it, and CB-4.10, binding."""
    for requirement_id in ("CB-4.3", "CB-4.10"):
        checks.run(BY_ID[requirement_id], toy_context("lenient_meta"))
    with pytest.raises(ConformanceFailure) as caught:
        checks.run(BY_ID["CB-4.19"], toy_context("lenient_meta"))
    assert caught.value.grade is Grade.INFORMATIONAL
    strict = toy_context("lenient_meta")
    strict.strict = True
    with pytest.raises(ConformanceFailure) as caught:
        checks.run(BY_ID["CB-4.10"], strict)
    assert caught.value.grade is Grade.FAIL


@pytest.mark.parametrize("requirement", CATALOGUE, ids=[r.id for r in CATALOGUE])
def test_conforming_toy_receiver_passes_under_strict(
    requirement, toy_context: Callable[..., Context]
) -> None:
    """The toy follows the project's full reading, so --strict finds nothing in it either."""
    ctx = toy_context()
    ctx.strict = True
    checks.run(requirement, ctx)
