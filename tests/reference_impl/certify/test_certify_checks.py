"""Grading is a pure function of a recording: each misbehaviour fails exactly its own check."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.certify import checks as c
from reference_impl.certify.checks import grade
from reference_impl.certify.recording import Recording
from tests.reference_impl.certify import builders as b


def _grade(rec: Recording) -> c.Certification:
    return grade(rec, deadline_at=b.T0 + b.DEADLINE)


def _not_passing(result: c.Certification) -> dict[str, str]:
    """Every check that is not PASS or INFORMATIONAL, with its grade."""
    return {
        check.id: check.grade
        for check in result.checks
        if check.grade not in (c.PASS, c.INFORMATIONAL)
    }


def test_well_behaved_vendor_certifies_clean_with_every_check_graded() -> None:
    result = _grade(b.well_behaved())
    assert _not_passing(result) == {}
    assert result.passed
    assert [check.id for check in result.checks] == [d.id for d in c.CHECKS]
    assert result.check("retry-after-500").measurements["retry_delay_seconds"] == 5.0
    assert "retried after 5.0 s" in result.check("retry-after-500").summary
    meta = result.check("meta-byte-exact")
    assert "long metas (>78) back exact: 2 of 2" in meta.summary
    assert {e.probe_id for e in meta.evidence} >= {"long-200", "long-1200"}


def test_grading_is_pure_same_recording_same_result() -> None:
    rec = b.well_behaved()
    assert _grade(rec) == _grade(rec)


def test_meta_folded_by_python_email_fails_only_meta_check_gh124452() -> None:
    """A vendor that reads the header with Python's email package returns long metas mangled."""

    def fold_long(document: dict) -> dict:
        for item in document["events"]["failed"]:
            if len(item["meta"]) > 78:
                item["meta"] = b.python_folded(item["meta"])
        return document

    result = _grade(b.replace_bodies(b.well_behaved(), fold_long))
    assert _not_passing(result) == {"meta-byte-exact": c.FAIL}
    assert not result.passed
    bad = [e for e in result.check("meta-byte-exact").evidence if e.grade == c.FAIL]
    assert {e.probe_id for e in bad} == {"long-200", "long-1200"}
    assert all("RFC 2047" in e.note for e in bad)
    assert all(e.expected and e.actual and e.expected != e.actual for e in bad)


def test_leading_space_from_folding_is_named_in_the_evidence() -> None:
    rec = b.well_behaved()
    target = rec.probes[5]

    def add_space(document: dict) -> dict:
        for item in document["events"]["failed"]:
            if item["meta"] == target.meta:
                item["meta"] = " " + item["meta"]
        return document

    result = _grade(b.replace_bodies(rec, add_space))
    assert _not_passing(result) == {"meta-byte-exact": c.FAIL}
    (bad,) = [e for e in result.check("meta-byte-exact").evidence if e.grade == c.FAIL]
    assert bad.probe_id == "long-74"
    assert "leading space" in bad.note


def test_meta_never_sent_fails_meta_check() -> None:
    rec = b.well_behaved()
    stranger = b.probe(20, "x", "stranger@sim.test", "hard_bounce")
    extra = b.call(9, 3.0, b.body([b.event(stranger)]))
    result = _grade(replace(rec, callbacks=(*rec.callbacks, extra)))
    assert _not_passing(result) == {"meta-byte-exact": c.FAIL}
    assert any(
        e.note == "matches no meta that was sent" for e in result.check("meta-byte-exact").evidence
    )


def test_vendor_that_never_retries_is_non_strict_on_retry_after_500_not_failed() -> None:
    """Issue 11: the page never says to retry a 500; that is our reading, so at most a SHOULD."""
    rec = b.well_behaved()
    calls = tuple(call for call in rec.callbacks if call.seq not in (4, 5))
    result = _grade(replace(rec, callbacks=calls))
    assert _not_passing(result) == {
        "retry-after-500": c.NON_STRICT,
        "retry-after-timeout": c.NON_STRICT,
    }
    assert result.passed
    assert result.check("retry-after-500").provenance.kind == "reading"
    evidence = result.check("retry-after-500").evidence
    assert evidence[0].callback_seq == 2 and c.NO_RETRY in evidence[0].note


def test_more_than_1000_events_in_one_call_fails_only_the_batch_limit() -> None:
    probes = [b.probe(i, f"bulk-{i}", f"bounce+{i}@sim.test", "hard_bounce") for i in range(1001)]
    rec = b.recording(probes, [b.call(1, 1.0, b.body([b.event(p) for p in probes]), status=400)])
    result = _grade(rec)
    assert _not_passing(result) == {"max-1000-events": c.FAIL}
    check = result.check("max-1000-events")
    assert check.evidence[0].note == "1001 events in one call"
    assert check.measurements["largest_call"] == 1001


def test_spam_reported_as_hard_bounce_fails_only_type_check() -> None:
    def spam_to_hard(document: dict) -> dict:
        for item in document["events"]["failed"]:
            if item["type"] == "spam":
                item["type"] = "hard_bounce"
        return document

    result = _grade(b.replace_bodies(b.well_behaved(), spam_to_hard))
    assert _not_passing(result) == {"type-matches-outcome": c.FAIL}
    (bad,) = [e for e in result.check("type-matches-outcome").evidence if e.grade == c.FAIL]
    assert (bad.probe_id, bad.expected, bad.actual) == ("spam", "spam", "hard_bounce")


def test_dropped_events_are_missing_in_the_deadline_check_only() -> None:
    def drop_soft_and_unsub(document: dict) -> dict:
        failed = document["events"]["failed"]
        document["events"]["failed"] = [
            i for i in failed if i["type"] not in ("soft_bounce", "unsubscribed")
        ]
        return document

    result = _grade(b.replace_bodies(b.well_behaved(), drop_soft_and_unsub))
    assert _not_passing(result) == {"all-events-by-deadline": c.MISSING}
    assert not result.passed
    missing = {e.probe_id for e in result.check("all-events-by-deadline").evidence}
    assert missing == {"soft", "unsub"}


def test_event_after_the_deadline_is_late_not_missing() -> None:
    rec = b.well_behaved()
    hard = rec.probes[0]
    late = b.call(9, b.DEADLINE + 30, b.body([b.event(hard)]))
    without = b.replace_bodies(
        rec,
        lambda d: {
            **d,
            "events": {
                **d["events"],
                "failed": [i for i in d["events"]["failed"] if i["meta"] != hard.meta],
            },
        },
    )
    result = _grade(replace(without, callbacks=(*without.callbacks, late)))
    assert _not_passing(result) == {"all-events-by-deadline": c.FAIL}
    assert "30.0 s after the deadline" in result.check("all-events-by-deadline").evidence[0].note


def test_nothing_arrived_grades_missing_not_pass() -> None:
    result = _grade(b.recording(b.standard_probes(), []))
    assert result.check("body-json-v2").grade == c.MISSING
    assert result.check("all-events-by-deadline").grade == c.MISSING
    assert result.check("retry-after-500").grade == c.MISSING
    assert not result.passed


@pytest.mark.parametrize(
    ("raw", "note"),
    [
        (b"not json", "body is not JSON"),
        (b'{"version": "v2", "events": {"failed": []}, "n": NaN}', "body is not JSON (NaN"),
        (b'{"version": "v2", "events": {"failed": [-Infinity]}}', "body is not JSON (-Infinity"),
        (b"\xff\xfe", "body is not UTF-8"),
        (b'{"version": "v1", "events": {"failed": []}}', "version is 'v1', not 'v2'"),
        (b"[1, 2]", "body is JSON but not an object"),
    ],
)
def test_body_that_is_not_json_v2_fails_body_check(raw: bytes, note: str) -> None:
    """PROTOCOL.md section 4: bodies are strict JSON, `NaN` and `Infinity` are not JSON."""
    rec = b.well_behaved()
    result = _grade(replace(rec, callbacks=(*rec.callbacks, b.call(9, 3.0, raw, status=400))))
    assert _not_passing(result) == {"body-json-v2": c.FAIL}
    assert result.check("body-json-v2").evidence[0].note.startswith(note)


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    return value


def _with_numbers(document: dict[str, Any], numbers: dict[str, Any]) -> dict[str, Any]:
    """`numbers` under keys the protocol does not define, at the top and in every event."""
    events = {
        group: [{**event, **numbers} for event in items]
        for group, items in document["events"].items()
    }
    return {**document, **numbers, "events": events}


def test_key_order_whitespace_and_numbers_as_doubles_change_no_grade() -> None:
    """PROTOCOL.md section 4: a callback is compared as a JSON value, key order and whitespace
    ignored, numbers as IEEE doubles: the same events, keys reversed and pretty-printed, with
    1.0 for 1, 2^53 for 2^53 + 1 and 0 for -0 in keys the protocol does not define, grade the same.
    """
    sent = {"x_count": 1, "x_id": 2**53 + 1, "x_zero": -0.0}
    echoed = {"x_count": 1.0, "x_id": 2**53, "x_zero": 0}
    plain = b.replace_bodies(b.well_behaved(), lambda d: _with_numbers(d, sent))
    calls = tuple(
        replace(
            call,
            body=json.dumps(
                _reordered(_with_numbers(json.loads(call.body), echoed)),
                indent="\t",
                separators=(" ,  ", " :\r\n "),
            ).encode(),
        )
        for call in plain.callbacks
    )
    reordered = replace(plain, callbacks=calls)
    assert reordered.callbacks[0].body != plain.callbacks[0].body
    want, got = _grade(plain), _grade(reordered)
    assert [(x.id, x.grade, x.summary) for x in got.checks] == [
        (x.id, x.grade, x.summary) for x in want.checks
    ]
    assert got.passed


def test_failure_events_outside_failed_group_fail_only_grouping() -> None:
    """Events under another key still arrived: only the grouping check fails."""
    rec = b.replace_bodies(
        b.well_behaved(), lambda d: {**d, "events": {"bounced": d["events"]["failed"]}}
    )
    result = _grade(rec)
    assert _not_passing(result) == {"events-grouped-failed": c.FAIL}
    notes = [e.note for e in result.check("events-grouped-failed").evidence]
    assert "7 failure event(s) under `events.bounced`" in notes


def test_wrong_email_fails_email_check_and_case_only_is_non_strict() -> None:
    rec = b.well_behaved()

    def rewrite(document: dict) -> dict:
        for item in document["events"]["failed"]:
            if item["type"] == "soft_bounce":
                item["email"] = "someone-else@sim.test"
            if item["type"] == "spam":
                item["email"] = item["email"].upper()
        return document

    result = _grade(b.replace_bodies(rec, rewrite))
    assert _not_passing(result) == {"email-matches-recipient": c.FAIL}
    grades = {e.probe_id: e.grade for e in result.check("email-matches-recipient").evidence}
    assert grades["soft"] == c.FAIL and grades["spam"] == c.NON_STRICT


def test_should_and_decision_checks_never_block() -> None:
    """A text/plain Content-Type is a SHOULD miss (NON-STRICT); no description, which the page
    calls optional, is a decision of ours: reported as INFORMATIONAL. Certified either way."""

    def strip_descriptions(document: dict) -> dict:
        for item in document["events"]["failed"]:
            item.pop("description", None)
        return document

    rec = b.replace_bodies(b.well_behaved(), strip_descriptions)
    rec = replace(
        rec,
        callbacks=tuple(
            replace(x, headers=(("Content-Type", "text/plain"),)) for x in rec.callbacks
        ),
    )
    result = _grade(rec)
    assert _not_passing(result) == {"content-type-json": c.NON_STRICT}
    described = result.check("description-present")
    assert described.grade == c.INFORMATIONAL and described.evidence
    assert result.passed


def test_duplicate_after_success_is_reported_but_retry_after_failure_is_not() -> None:
    rec = b.well_behaved()
    first = rec.callbacks[0]
    again = replace(first, seq=9, arrived_at=first.arrived_at + 20)
    result = _grade(replace(rec, callbacks=(*rec.callbacks, again)))
    assert _not_passing(result) == {}
    assert result.check("no-unprompted-duplicates").grade == c.INFORMATIONAL
    flagged = {e.probe_id for e in result.check("no-unprompted-duplicates").evidence}
    assert "retry-500" not in flagged and "hard" in flagged


def test_delivered_probe_reported_as_bounce_fails_type_check() -> None:
    rec = b.well_behaved()
    ok = rec.probes[4]
    bad = b.call(9, 3.0, b.body([b.event(ok, "hard_bounce")]))
    result = _grade(replace(rec, callbacks=(*rec.callbacks, bad)))
    assert _not_passing(result) == {"type-matches-outcome": c.FAIL}


def test_legacy_bounce_type_for_hard_bounce_is_non_strict() -> None:
    def legacy(document: dict) -> dict:
        for item in document["events"]["failed"]:
            if item["type"] == "hard_bounce":
                item["type"] = "bounce"
        return document

    result = _grade(b.replace_bodies(b.well_behaved(), legacy))
    assert _not_passing(result) == {"type-matches-outcome": c.NON_STRICT}
    assert result.passed


def test_smtp_refused_probe_fails_smtp_check_and_is_not_expected_by_deadline() -> None:
    rec = b.well_behaved()
    probes = list(rec.probes)
    probes.append(b.probe(30, "refused", "bounce+x@sim.test", "hard_bounce"))
    probes[-1] = replace(probes[-1], send_error="550 5.7.1 relay denied")
    result = _grade(replace(rec, probes=tuple(probes)))
    assert _not_passing(result) == {"smtp-accepted": c.FAIL}


def test_every_probe_refused_is_not_a_deadline_pass_of_0_of_0() -> None:
    """Issue 10: with nothing sent, `all-events-by-deadline` passed with "0 of 0"."""
    probes = [replace(p, send_error="550 5.7.1 relay denied") for p in b.standard_probes()]
    result = _grade(b.recording(probes, []))
    deadline = result.check("all-events-by-deadline")
    assert deadline.grade == c.MISSING
    assert "refused over SMTP" in deadline.summary
    assert not result.passed


def test_plan_without_retry_probes_is_informational() -> None:
    probes = [p for p in b.standard_probes() if not p.respond]
    rec = b.well_behaved(b.standard_probes())
    calls = tuple(x for x in rec.callbacks if x.seq == 1)
    result = _grade(replace(rec, probes=tuple(probes), callbacks=calls))
    assert result.check("retry-after-500").grade == c.INFORMATIONAL
    assert result.check("retry-after-500").summary == c.NOT_PROBED_500
    assert result.passed


@pytest.mark.parametrize(
    ("sent", "got", "words"),
    [
        ("a|b|", " a|b|", "leading space"),
        ("a|b|", "a|\r\n b|", "whitespace inserted"),
        ("a|b|c|", "a|b", "truncated"),
        ("a|b|", "=?utf-8?q?a=7Cb=7C?=", "RFC 2047"),
        ("a|b|", "z|z|", "differs"),
    ],
)
def test_describe_mismatch_names_the_transport_fault(sent: str, got: str, words: str) -> None:
    assert words in c.describe_mismatch(sent, got)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
envelopes = st.fixed_dictionaries(
    {"version": st.sampled_from(["v2", "v1", 2]), "events": json_values}
) | st.fixed_dictionaries(
    {"version": st.just("v2"), "events": st.fixed_dictionaries({"failed": st.lists(json_values)})}
)


@given(bodies=st.lists(st.binary(max_size=60) | envelopes.map(lambda d: json.dumps(d).encode())))
def test_grading_any_vendor_garbage_never_crashes_and_grades_every_check(
    bodies: list[bytes],
) -> None:
    """A vendor can send anything; the grader must still return one grade per check."""
    calls = [b.call(i + 1, float(i), raw) for i, raw in enumerate(bodies)]
    result = _grade(b.recording(b.standard_probes(), calls))
    assert [check.id for check in result.checks] == [d.id for d in c.CHECKS]
    assert all(check.grade in c.GRADES for check in result.checks)
    if not bodies:
        assert result.check("body-json-v2").grade == c.MISSING
