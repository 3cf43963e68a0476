"""Batch building, mutations, and the independent PROTOCOL.md section 4 response check."""

from __future__ import annotations

import json
import random

from simulator.protocol.checks import (
    COUNT_INVARIANT,
    NONZERO_ON_REFUSAL,
    WRONG_DESCRIPTION,
    WRONG_STATUS,
    WRONG_TOTAL,
    WRONG_UNPROCESSED,
    check_response,
)
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
    assert [(f.index, f.description) for f in built.expected_failures] == [
        (1, "invalid meta"),
        (2, "Could not map event to any"),
        (3, ""),
        (4, "Could not map event to any"),
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


def test_wrong_counts_missing_unprocessed_and_descriptions_are_reported() -> None:
    built = build_batch([event(1), event(2, "drop_meta")])
    lying = json.dumps({"TOTAL_EVENTS": 3, "PROCESSED_EVENTS": 2, "UNPROCESSED_EVENTS": []})
    problems = check_response(built.payload, built.expected_failures, 200, lying)
    assert any(p.startswith(COUNT_INVARIANT) for p in problems)
    assert any(p.startswith(WRONG_TOTAL) for p in problems)
    assert any(p.startswith(WRONG_UNPROCESSED) for p in problems)
    wrong_text = reply(built.payload, [(built.expected_failures[0], "bad type")])
    assert check_response(built.payload, built.expected_failures, 200, wrong_text)[0].startswith(
        WRONG_DESCRIPTION
    )


def test_oversized_batch_must_be_refused_whole() -> None:
    built = build_batch([event(i) for i in range(1001)])
    accepted = reply(built.payload, [])
    assert check_response(built.payload, (), 200, accepted)[0].startswith(WRONG_STATUS)
    refusal = json.dumps(
        {
            "error": "More than allowed events received.",
            "TOTAL_EVENTS": 0,
            "PROCESSED_EVENTS": 0,
            "UNPROCESSED_EVENTS": [],
        }
    )
    assert check_response(built.payload, (), 400, refusal) == []
    partial = json.dumps(
        {
            "error": "More than allowed events received.",
            "TOTAL_EVENTS": 1001,
            "PROCESSED_EVENTS": 0,
            "UNPROCESSED_EVENTS": [],
        }
    )
    assert check_response(built.payload, (), 400, partial)[0].startswith(NONZERO_ON_REFUSAL)


def test_non_json_body_is_a_problem() -> None:
    assert check_response({"events": {"failed": []}}, (), 200, "<html>")
