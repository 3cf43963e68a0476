"""Payload validation and response building (PROTOCOL.md sections 3 and 4), without I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.protocol import replies as r
from reference_impl.protocol.limits import MAX_DESCRIPTION_LENGTH
from reference_impl.protocol.meta import Meta, build_meta
from reference_impl.protocol.payload import Accepted, PayloadRejected, check_event, read_batch
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


def nested(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def test_nesting_deeper_than_the_limit_is_refused_whole() -> None:
    reply = reply_for(envelope([{"type": "spam", "extra": nested(70)}]))
    assert reply == r.error_reply(400, r.READ_ERROR)


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"nested": nested(60)}, 200),
        ({"nested": nested(61)}, 400),
        ({"description": None, "nested": nested(61)}, 400),
        ({"description": "d", "nested": {"a": nested(60)}}, 400),
    ],
)
def test_depth_limit_holds_inside_unknown_keys_of_valid_events(
    extra: dict[str, Any], status: int
) -> None:
    """Valid events are accepted a group at a time without walking their values; an unknown key
    among them is still walked, and the limit (a container at most 63 levels below the document)
    is the same as anywhere else."""
    good = sample("callback-request.json")["events"]["failed"]
    reply = reply_for(envelope([*good, {**good[0], **extra}]))
    assert reply.status == status
    if status == 400:
        assert reply == r.error_reply(400, r.READ_ERROR)
    else:
        assert reply.body["PROCESSED_EVENTS"] == len(good) + 1


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
        {**GOOD, "description": "x" * MAX_DESCRIPTION_LENGTH},
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


def test_long_description_is_kept_whole_up_to_its_limit() -> None:
    batch = read_batch(envelope([{**GOOD, "description": "y" * MAX_DESCRIPTION_LENGTH}]))
    assert batch.accepted.descriptions[0] == "y" * MAX_DESCRIPTION_LENGTH


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


TRICKY = st.text(st.sampled_from("ab@|\n\r 09-_.\x00\x7f\u00e9"), max_size=30)
TRICKY_METAS = st.one_of(
    TRICKY,
    st.builds(lambda a, b: f"{a['meta']}\n{b['meta']}", valid_events(), valid_events()),
    st.builds(
        build_meta,
        st.builds(
            Meta,
            email=st.sampled_from(["a|b@example.com", "A@B", "a@b@c", "x@y.example"]),
            account_id=st.integers(0, 2**63 - 1),
            sent_at=st.integers(0, 2_000_000_000),
            variant=st.integers(0, 2**63 - 1),
            label=st.sampled_from(["l", "@", "x-y"]),
            message_id=st.integers(-(2**63), 2**63 - 1),
        ),
    ),
)


@st.composite
def tricky_events(draw: st.DrawFn) -> Any:
    """Events aimed at the whole-group path: near-valid values, newlines, pipes, huge ids."""
    event = draw(valid_events())
    field = draw(st.sampled_from(["meta", "email", "description", "type", "extra", None]))
    if field == "meta":
        event["meta"] = draw(TRICKY_METAS)
    elif field in ("email", "description"):
        event[field] = draw(TRICKY | st.integers() | st.none())
    elif field == "type":
        event["type"] = draw(st.sampled_from(["delivered", "spam", ["spam"], None, "SPAM"]))
    elif field == "extra":
        event["nested"] = draw(st.recursive(st.none(), st.lists, max_leaves=5))
    return event


def one_by_one(events: list[Any]) -> tuple[Accepted, list[dict[str, Any]]]:
    """The reference: every event through `check_event`, the per-event path."""
    accepted = Accepted()
    unprocessed: list[dict[str, Any]] = []
    for position, event in enumerate(events):
        if type(event) is not dict:
            unprocessed.append({"event": event, r.ERROR_DESCRIPTION_KEY: r.NOT_AN_OBJECT})
            continue
        checked = check_event("failed", event, position)
        if type(checked) is str:
            unprocessed.append({**event, r.ERROR_DESCRIPTION_KEY: checked})
        else:
            accepted.append(checked)
    return accepted, unprocessed


@given(st.lists(st.one_of(valid_events(), tricky_events()), max_size=12))
def test_whole_group_check_agrees_with_checking_each_event(events: list[Any]) -> None:
    """The one-pass column check is an optimisation: it must accept, refuse and decode exactly
    what `check_event` does, event by event, for any batch."""
    body = envelope(events)
    batch = read_batch(body)
    assert (batch.accepted, batch.unprocessed) == one_by_one(json.loads(body)["events"]["failed"])


def test_meta_ids_beyond_64_bits_fail_that_event_alone() -> None:
    """A meta the store could not hold is refused for that event, never a 500 for the batch."""
    good = json.loads(envelope([GOOD]))["events"]["failed"][0]
    huge = {**good, "meta": good["meta"].rsplit("|", 2)[0] + "|99999999999999999999|"}
    batch = read_batch(envelope([good, huge]))
    assert len(batch.accepted) == 1
    assert batch.unprocessed == [{**huge, "errorDescription": r.INVALID_META}]


def test_meta_holding_two_lines_cannot_stand_in_for_a_bad_one() -> None:
    """The one-pass check matches metas one per line: a newline inside a meta must not let it
    count for two and cover an invalid neighbour."""
    good = json.loads(envelope([GOOD]))["events"]["failed"][0]
    doubled = {**good, "meta": f"{good['meta']}\n{good['meta']}"}
    bad = {**good, "meta": "not a meta"}
    batch = read_batch(envelope([doubled, bad]))
    assert [entry["errorDescription"] for entry in batch.unprocessed] == [r.INVALID_META] * 2


def test_email_holding_two_lines_cannot_stand_in_for_a_bad_one() -> None:
    good = json.loads(envelope([GOOD]))["events"]["failed"][0]
    doubled = {**good, "email": "a@example.com\nb@example.com"}
    bad = {**good, "email": "not an address"}
    batch = read_batch(envelope([doubled, bad]))
    assert [entry["errorDescription"] for entry in batch.unprocessed] == [r.INVALID_EMAIL] * 2
