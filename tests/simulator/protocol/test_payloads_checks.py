"""Batch building, mutations, and the independent PROTOCOL.md section 4 response check."""

from __future__ import annotations

import json
import random

from simulator.protocol.checks import NOT_JSON, REPLY_DIFFERS, check_response
from simulator.protocol.payloads import SpooledEvent, build_batch, request_order
from tests.samples import sample

META = "u@example.com|1568798080|1730714617|20241104|0|wzrk_default|-1|"


def event(i: int, mutation: str | None = None, group: str = "failed", **kw) -> SpooledEvent:
    kind = "delivered" if group == "success" else "hard_bounce"
    return (
        i,
        group,
        kind,
        f"u{i}@example.com",
        kw.get("meta", META),
        "550 5.1.1",
        mutation,
        kw.get("extra", False),
    )


def reply(payload, failures) -> str:
    sent = request_order(payload)
    unprocessed = [{**sent[f.index], "errorDescription": desc} for f, desc in failures]
    body = {
        "TOTAL_EVENTS": len(sent),
        "PROCESSED_EVENTS": len(sent) - len(unprocessed),
        "UNPROCESSED_EVENTS": unprocessed,
    }
    if unprocessed:
        body = {"error": f"{len(unprocessed)} event(s) failed to process", **body}
    return json.dumps(body)


def test_groups_go_to_failed_and_success_and_mutations_are_expected_failures() -> None:
    built = build_batch(
        [
            event(1),
            event(2, "drop_meta"),
            event(3, group="success"),
            event(4, "unknown_type"),
            event(5, "malformed_email"),
            event(6, "drop_type", extra=True),
            event(7, meta=None),
        ]
    )
    failed = built.payload["events"]["failed"]
    assert built.payload["version"] == "v2"
    assert "meta" not in failed[1] and failed[2]["type"] == "mystery_bounce"
    assert (
        " at " in failed[3]["email"] and "type" not in failed[4] and "x_esp_event_id" in failed[4]
    )
    assert built.payload["events"]["success"][0]["type"] == "delivered"
    # The model's judgement: a malformed email is left open by the page, so it is not expected.
    assert [(f.index, f.description) for f in built.expected_failures] == [
        (1, "invalid meta"),
        (2, "Could not map event to any bounce type"),
        (4, "Could not map event to any bounce type"),
        (5, "invalid meta"),
    ]


def test_reorder_shuffles_deterministically() -> None:
    events = [event(i) for i in range(20)]
    one = build_batch(events, random.Random(3)).event_ids
    assert one == build_batch(events, random.Random(3)).event_ids
    assert one != tuple(range(20))


def test_a_correct_partial_response_has_no_problems() -> None:
    built = build_batch([event(1), event(2, "drop_meta"), event(3, "unknown_type")])
    body = reply(
        built.payload,
        zip(
            built.expected_failures,
            ["invalid meta", "Could not map event to any bounce type"],
            strict=True,
        ),
    )
    assert check_response(built.payload, built.expected_failures, 200, body) == []


def test_the_vendor_sample_responses_pass_the_check_shape() -> None:
    payload = {"version": "v2", "events": {"failed": [{"type": "spam"}] * 4}}
    assert check_response(payload, (), 200, json.dumps(sample("response-success.json"))) == []
    assert check_response(payload, (), 500, json.dumps(sample("response-error.json"))) == []


def _differs(problems: list[str], field: str) -> bool:
    return any(p.startswith(f"{REPLY_DIFFERS}: {field}:") for p in problems)


def test_wrong_counts_missing_unprocessed_and_descriptions_are_reported() -> None:
    """CB-4.9/CB-4.10: counts that do not add up and a missing refused event are each named."""
    built = build_batch([event(1), event(2, "drop_meta")])
    lying = json.dumps({"TOTAL_EVENTS": 3, "PROCESSED_EVENTS": 2, "UNPROCESSED_EVENTS": []})
    problems = check_response(built.payload, built.expected_failures, 200, lying)
    assert _differs(problems, "body.TOTAL_EVENTS")
    assert _differs(problems, "body.PROCESSED_EVENTS")
    assert _differs(problems, "body.UNPROCESSED_EVENTS[0]")
    assert _differs(problems, "body.error")
    wrong_text = reply(built.payload, [(built.expected_failures[0], "bad type")])
    problems = check_response(built.payload, built.expected_failures, 200, wrong_text)
    assert problems == [
        f"{REPLY_DIFFERS}: body.UNPROCESSED_EVENTS[0].errorDescription: expected 'invalid meta',"
        " got 'bad type'"
    ]


def test_oversized_batch_must_be_refused_whole() -> None:
    """CB-3.8: over 1000 events is a 400 `More than allowed events received.` with zero counts."""
    built = build_batch([event(i) for i in range(1001)])
    accepted = reply(built.payload, [])
    assert _differs(check_response(built.payload, (), 200, accepted), "status")
    refusal = {
        "error": "More than allowed events received.",
        "TOTAL_EVENTS": 0,
        "PROCESSED_EVENTS": 0,
        "UNPROCESSED_EVENTS": [],
    }
    assert check_response(built.payload, (), 400, json.dumps(refusal)) == []
    partial = json.dumps({**refusal, "TOTAL_EVENTS": 1001})
    assert _differs(check_response(built.payload, (), 400, partial), "body.TOTAL_EVENTS")


def test_non_json_body_is_a_problem() -> None:
    problems = check_response({"events": {"failed": []}}, (), 200, "<html>")
    assert problems and problems[0].startswith(NOT_JSON)


def test_an_echo_with_nan_or_infinity_is_not_json() -> None:
    """CB-4.11: `NaN` and `Infinity` are not JSON, though Python's json reads them."""
    built = build_batch([event(1)])
    for constant in ("NaN", "Infinity", "-Infinity"):
        body = reply(built.payload, []).replace('"TOTAL_EVENTS": 1', f'"TOTAL_EVENTS": {constant}')
        problems = check_response(built.payload, (), 200, body)
        assert problems and problems[0].startswith(NOT_JSON), constant


def test_a_failed_event_answered_with_the_delivery_wording_is_a_problem() -> None:
    """CB-4.4: an unmapped failed event is `Could not map event to any bounce type`.

    The old check matched the expected wording as a prefix (`Could not map event to any`) and
    so accepted the wording for deliveries; the model wants the bounce wording exactly.
    """
    built = build_batch([event(1), event(2, "unknown_type")])
    body = reply(
        built.payload,
        [(built.expected_failures[0], "Could not map event to any delivery type")],
    )
    assert check_response(built.payload, built.expected_failures, 200, body) == [
        f"{REPLY_DIFFERS}: body.UNPROCESSED_EVENTS[0].errorDescription: expected 'Could not map"
        " event to any bounce type', got 'Could not map event to any delivery type'"
    ]


def test_an_empty_error_description_is_a_problem() -> None:
    """CB-4.5/CB-4.17: a refused event carries a non-empty errorDescription, whatever its wording.

    The old check expected the empty prefix for a malformed email, which every string starts with.
    """
    built = build_batch([event(1), event(2, "malformed_email")])
    sent = request_order(built.payload)
    refused = {"error": "1 event(s) failed to process", "TOTAL_EVENTS": 2, "PROCESSED_EVENTS": 1}
    for description in ("", "   "):
        entry = {**sent[1], "errorDescription": description}
        body = json.dumps({**refused, "UNPROCESSED_EVENTS": [entry]})
        assert check_response(built.payload, built.expected_failures, 200, body) != []
    entry = {**sent[1], "errorDescription": "email address is malformed"}
    body = json.dumps({**refused, "UNPROCESSED_EVENTS": [entry]})
    assert check_response(built.payload, built.expected_failures, 200, body) == []
