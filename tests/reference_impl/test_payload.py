"""Payload validation and response building (PROTOCOL.md sections 3 and 4), without I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl import responses as r
from reference_impl.payload import PayloadRejected, read_batch
from tests.reference_impl.strategies import envelope, mixed_events, valid_events
from tests.samples import sample, sample_bytes


def reply_for(body: bytes) -> r.Reply:
    try:
        return read_batch(body).reply()
    except PayloadRejected as rejected:
        return rejected.reply


def test_vendor_sample_request_is_fully_processed_as_the_page_shows() -> None:
    reply = reply_for(sample_bytes("callback-request.json"))
    assert reply == r.Reply(200, sample("response-success.json"))


def test_vendor_partial_failure_sample_is_answered_word_for_word() -> None:
    """The page's partial response: two bad events echoed in order with errorDescription."""
    expected = sample("response-partial.json")
    good = sample("callback-request.json")["events"]["failed"][1:3]
    bad = [
        {key: value for key, value in entry.items() if key != "errorDescription"}
        for entry in expected["UNPROCESSED_EVENTS"]
    ]
    body = envelope([bad[0], good[0], bad[1], good[1]])
    assert reply_for(body) == r.Reply(200, expected)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", r.READ_ERROR),
        (b"{not json", r.READ_ERROR),
        (b'{"version": "v2", "events": {"failed": ["\xff\xfe"]}}', r.READ_ERROR),
        (b"[" * 100_000 + b"]" * 100_000, r.READ_ERROR),
        (b"[]", r.MISSING_PARAMETERS),
        (b'"v2"', r.MISSING_PARAMETERS),
        (b"null", r.MISSING_PARAMETERS),
        (b'{"events": {"failed": []}}', r.MISSING_PARAMETERS),
        (b'{"version": "v1", "events": {"failed": []}}', r.MISSING_PARAMETERS),
        (b'{"version": 2, "events": {"failed": []}}', r.MISSING_PARAMETERS),
        (b'{"version": "v2"}', r.MISSING_PARAMETERS),
        (b'{"version": "v2", "events": []}', r.MISSING_PARAMETERS),
        (b'{"version": "v2", "events": {}}', r.MISSING_PARAMETERS),
        (b'{"version": "v2", "events": {"bounced": []}}', r.MISSING_PARAMETERS),
        (b'{"version": "v2", "events": {"failed": {}}}', r.MISSING_PARAMETERS),
        (b'{"version": "v2", "events": {"failed": [], "success": "x"}}', r.MISSING_PARAMETERS),
    ],
)
def test_unusable_body_gets_400_with_documented_message(body: bytes, message: str) -> None:
    assert reply_for(body) == r.error_reply(400, message)


def test_nesting_deeper_than_the_limit_is_refused_whole() -> None:
    deep: Any = "x"
    for _ in range(70):
        deep = [deep]
    reply = reply_for(envelope([{"type": "spam", "extra": deep}]))
    assert reply == r.error_reply(400, r.READ_ERROR)


@pytest.mark.parametrize("count", [1001, 1500])
def test_more_than_1000_events_is_refused_whole(count: int) -> None:
    event = sample("callback-request.json")["events"]["failed"][0]
    assert reply_for(envelope([event] * count)) == r.error_reply(400, r.TOO_MANY_EVENTS)


def test_limit_counts_failed_and_success_together() -> None:
    event = sample("callback-request.json")["events"]["failed"][0]
    delivered = {**event, "type": "delivered"}
    body = json.dumps(
        {"version": "v2", "events": {"failed": [event] * 600, "success": [delivered] * 401}}
    ).encode()
    assert reply_for(body) == r.error_reply(400, r.TOO_MANY_EVENTS)


def test_exactly_1000_events_are_accepted() -> None:
    event = sample("callback-request.json")["events"]["failed"][0]
    reply = reply_for(envelope([event] * 1000))
    assert reply.body == {"TOTAL_EVENTS": 1000, "PROCESSED_EVENTS": 1000, "UNPROCESSED_EVENTS": []}


GOOD = {
    "type": "hard_bounce",
    "email": "u@example.com",
    "meta": "u@example.com|1|1730714617|20241104|0|wzrk_default|-1|",
    "description": "550 5.1.1 User unknown",
}


@pytest.mark.parametrize(
    ("event", "description"),
    [
        ({**GOOD, "type": None}, r.UNMAPPED_TYPE),
        ({**GOOD, "type": 3}, r.UNMAPPED_TYPE),
        ({**GOOD, "type": ["spam"]}, r.UNMAPPED_TYPE),
        ({**GOOD, "type": "HARD_BOUNCE"}, r.UNMAPPED_TYPE),
        ({**GOOD, "type": "spam\x00"}, r.UNMAPPED_TYPE),
        ({**GOOD, "meta": ""}, r.INVALID_META),
        ({**GOOD, "meta": 12}, r.INVALID_META),
        ({**GOOD, "meta": {"a": 1}}, r.INVALID_META),
        ({**GOOD, "meta": GOOD["meta"] + "\n"}, r.INVALID_META),
        ({**GOOD, "email": ""}, r.INVALID_EMAIL),
        ({**GOOD, "email": ["u@example.com"]}, r.INVALID_EMAIL),
        ({**GOOD, "email": "u@exa\x00mple.com"}, r.INVALID_EMAIL),
        ({**GOOD, "email": "u example.com"}, r.INVALID_EMAIL),
        ({**GOOD, "email": "a@b@c"}, r.INVALID_EMAIL),
        ({**GOOD, "email": "\ud800@example.com"}, r.INVALID_EMAIL),
        ({**GOOD, "description": 5}, r.INVALID_DESCRIPTION),
        ({**GOOD, "description": "bad\x00byte"}, r.INVALID_DESCRIPTION),
        ({**GOOD, "description": "bell\x07"}, r.INVALID_DESCRIPTION),
        ({**GOOD, "description": "lone \ud800 surrogate"}, r.INVALID_DESCRIPTION),
    ],
)
def test_bad_field_fails_that_event_alone(event: dict[str, Any], description: str) -> None:
    """A wrongly typed or control-character field is a partial failure, never a 400."""
    body = json.dumps({"version": "v2", "events": {"failed": [GOOD, event, GOOD]}}).encode()
    reply = reply_for(body)
    assert reply.status == 200
    assert reply.body == {
        "error": "1 event(s) failed to process",
        "TOTAL_EVENTS": 3,
        "PROCESSED_EVENTS": 2,
        "UNPROCESSED_EVENTS": [{**event, "errorDescription": description}],
    }


@pytest.mark.parametrize("value", [1, "text", None, True, [GOOD]])
def test_event_that_is_not_an_object_is_echoed_under_event(value: Any) -> None:
    reply = reply_for(envelope([value]))
    assert reply.body["UNPROCESSED_EVENTS"] == [
        {"event": value, "errorDescription": r.NOT_AN_OBJECT}
    ]


@pytest.mark.parametrize(
    "event",
    [
        {**GOOD, "description": "x" * 200_000},
        {**GOOD, "description": "Boîte pleine — 受信箱がいっぱい 📭"},
        {**GOOD, "description": "line one\r\n\tline two"},
        {**GOOD, "email": "josé@exämple.com"},
        {**GOOD, "sg_event_id": "abc", "nested": {"a": [1, 2]}},
        {**GOOD, "description": None},
        {key: value for key, value in GOOD.items() if key != "description"},
        {**GOOD, "type": "bounce"},
    ],
)
def test_unusual_but_valid_events_are_processed(event: dict[str, Any]) -> None:
    assert reply_for(envelope([event])).body == {
        "TOTAL_EVENTS": 1,
        "PROCESSED_EVENTS": 1,
        "UNPROCESSED_EVENTS": [],
    }


def test_long_description_is_kept_whole() -> None:
    batch = read_batch(envelope([{**GOOD, "description": "y" * 300_000}]))
    assert batch.accepted[0].description == "y" * 300_000


def test_success_group_counts_deliveries_and_rejects_other_types() -> None:
    body = json.dumps(
        {
            "version": "v2",
            "events": {"success": [{**GOOD, "type": "delivered"}, {**GOOD, "type": "spam"}]},
        }
    ).encode()
    reply = reply_for(body)
    assert reply.body["PROCESSED_EVENTS"] == 1
    assert reply.body["UNPROCESSED_EVENTS"] == [
        {**GOOD, "type": "spam", "errorDescription": r.UNMAPPED_SUCCESS_TYPE}
    ]


def test_groups_are_reported_in_the_order_the_request_gave_them() -> None:
    body = b'{"version": "v2", "events": {"success": [{"type": "x"}], "failed": [{"type": "y"}]}}'
    entries = reply_for(body).body["UNPROCESSED_EVENTS"]
    assert [entry["type"] for entry in entries] == ["x", "y"]


@given(st.lists(mixed_events(), max_size=60))
def test_counts_invariant_and_unprocessed_are_exactly_the_bad_events_in_order(
    events: list[tuple[Any, bool]],
) -> None:
    reply = reply_for(envelope([event for event, _ in events]))
    body = reply.body
    assert reply.status == 200
    assert body["TOTAL_EVENTS"] == len(events)
    assert body["TOTAL_EVENTS"] == body["PROCESSED_EVENTS"] + len(body["UNPROCESSED_EVENTS"])
    bad = [event for event, ok in events if not ok]
    echoed = [entry.get("event", entry) for entry in body["UNPROCESSED_EVENTS"]]
    assert [
        {k: v for k, v in e.items() if k != "errorDescription"} if isinstance(e, dict) else e
        for e in echoed
    ] == bad
    assert all(entry["errorDescription"] for entry in body["UNPROCESSED_EVENTS"])
    assert ("error" in body) == bool(bad)


@settings(max_examples=10)
@given(st.integers(1001, 1300), valid_events())
def test_any_batch_over_1000_is_refused_whole(count: int, event: dict[str, Any]) -> None:
    assert reply_for(envelope([event] * count)) == r.error_reply(400, r.TOO_MANY_EVENTS)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    assert reply_for(body).status in (200, 400)
