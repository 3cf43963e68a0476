"""The ESP side's expectation model and its diff, tested as pure functions (PROTOCOL.md 3-4)."""

from __future__ import annotations

import json
from typing import Any

from simulator.conformance import strategies as cs
from simulator.protocol import expect as x
from simulator.protocol.difference import ABSENT, Difference, NonEmptyString, OneOf, difference
from tests.samples import sample, sample_bytes


def _expected(payload: Any) -> x.Expected:
    return x.expected_response(json.dumps(payload).encode())


def test_vendor_samples_match_the_model() -> None:
    """CB-4.1: the vendor's sample request gets the vendor's sample success reply."""
    model = x.expected_response(sample_bytes("callback-request.json"))
    assert (model.status, model.body) == (200, sample("response-success.json"))


def test_vendor_partial_sample_matches_the_model() -> None:
    """CB-4.2: the vendor's partial-failure reply is what the model expects for its events."""
    reply = sample("response-partial.json")
    failed = [
        {k: v for k, v in entry.items() if k != "errorDescription"}
        for entry in reply["UNPROCESSED_EVENTS"]
    ]
    good = sample("callback-request.json")["events"]["failed"][:2]
    model = _expected(cs.batch([failed[0], *good, failed[1]]))
    assert model.status == 200
    assert difference(model.body, reply) == []


def test_unreadable_and_oversized_bodies() -> None:
    """CB-4.6 and CB-3.8: whole-request refusals carry zero counts."""
    assert x.expected_response(b"{").body == x.refusal(x.READ_ERROR)
    assert x.expected_response(b"\xff").status == 400
    event = sample("callback-request.json")["events"]["failed"][0]
    assert _expected(cs.batch([event] * 1001)).body == x.refusal(x.TOO_MANY_EVENTS)
    assert _expected(cs.batch([event] * 1000, [event])).body == x.refusal(x.TOO_MANY_EVENTS)
    assert _expected(cs.batch([event] * 1000)).body == x.batch_reply(1000, [])


def test_open_points_are_not_decided() -> None:
    """Where PROTOCOL.md is silent the model accepts either answer instead of guessing."""
    event = sample("callback-request.json")["events"]["failed"][0]
    control = {**event, "description": "tab\x01"}
    model = _expected(cs.batch([control]))
    assert model.verdicts[0].outcome is x.Outcome.EITHER
    assert model.resolve(x.batch_reply(1, [])) == x.batch_reply(1, [])
    refused = x.batch_reply(1, [{**control, "errorDescription": "invalid description"}])
    assert difference(model.resolve(refused), refused) == []
    assert isinstance(_expected([1]).body["error"], OneOf)
    nested = b'{"version":"v2","events":{"failed":[]},"x":' + b"[" * 40 + b"]" * 40 + b"}"
    assert isinstance(x.expected_response(nested).status, OneOf)


def test_meta_layout_judgement() -> None:
    """Section 2's reading: eight fields, trailing empty, digits, date = UTC date of the send."""
    good = cs.build_meta("a@example.com", 1, 1730714617, 0, "wzrk_default", -5)
    assert good == "a@example.com|1|1730714617|20241104|0|wzrk_default|-5|"
    assert x.meta_layout(good) is x.Judgement.VALID
    for bad in ["", good[:-1], good.replace("20241104", "20241105"), good.replace("|1|", "|x|")]:
        assert x.meta_layout(bad) is x.Judgement.INVALID, bad
        assert x.judge_meta(bad, readings=True) is x.Judgement.INVALID, bad
        assert x.judge_meta(bad) is x.Judgement.OPEN, "the page defines no layout"
    assert x.meta_layout(good.replace("a@", "é@")) is x.Judgement.OPEN


def test_the_page_decides_only_a_missing_meta_or_email() -> None:
    """CB-4.3/CB-4.5: missing is refused by the page; empty or malformed only by our reading."""
    assert x.judge_meta(None) is x.Judgement.INVALID
    assert x.judge_email(None) is x.Judgement.INVALID
    for value in ["", 5, "garbage"]:
        assert x.judge_meta(value) is x.Judgement.OPEN
    for value in ["", 5, "plainaddress", "two words@example.com"]:
        assert x.judge_email(value) is x.Judgement.OPEN
        assert x.judge_email(value, readings=True) is x.Judgement.INVALID


def test_several_faults_accept_any_of_their_descriptions() -> None:
    """CB-4.15 is informational: with a bad type and no meta, either wording is right."""
    verdict = x.judge_event({"type": "nope", "email": "a@example.com"})
    assert verdict.outcome is x.Outcome.UNPROCESSED
    assert isinstance(verdict.description, OneOf)
    assert set(verdict.description.options) == {x.UNMAPPED_TYPE, x.INVALID_META}


def test_an_event_that_is_not_an_object_may_refuse_the_whole_batch() -> None:
    """The page's "payload format is incorrect": a 400 for the batch is as good as an entry."""
    model = _expected(cs.batch([5]))
    assert model.choose(400, None) == (400, x.refusal(x.MISSING_PARAMETERS))
    assert model.choose(200, None)[0] == 200


def test_difference_names_each_field() -> None:
    """Rows name the deepest differing field; matchers accept what the protocol leaves open."""
    expected = {"a": 1, "b": [1, {"c": NonEmptyString()}], "d": True}
    actual = {"a": 2, "b": [1, {"c": ""}, 3], "d": 1, "e": None}
    assert difference(expected, actual) == [
        Difference("a", 1, 2),
        Difference("b[1].c", expected["b"][1]["c"], ""),
        Difference("b[2]", ABSENT, 3),
        Difference("d", True, 1),
        Difference("e", ABSENT, None),
    ]
    assert difference({"n": 1}, {"n": 1.0}) == []


def test_numbers_are_compared_as_ieee_doubles() -> None:
    """CB-4.10: an echo through a stock JSON parser (Node's) is the same JSON value."""
    assert difference({"n": 9007199254740993}, {"n": 9007199254740992}) == []
    assert difference({"n": 6.921887342483613e16}, {"n": 69218873424836130}) == []
    assert difference({"n": 10**400}, {"n": float("inf")}) == []
    assert difference({"n": 1}, {"n": 2}) != []
    assert difference({"n": True}, {"n": 1}) != []


def _with_number(literal: str) -> bytes:
    """A batch of one event, refused for its missing meta, holding `literal` under `x_number`."""
    event = json.dumps({"type": "hard_bounce", "email": "a@example.com", "meta": None})
    event = event[:-1] + f', "x_number": {literal}}}'
    return f'{{"version": "v2", "events": {{"failed": [{event}]}}}}'.encode()


def test_a_number_beyond_the_double_range_may_be_refused_as_unreadable_or_echoed() -> None:
    """PROTOCOL.md section 4: numbers are the doubles a stock parser keeps; `1e400` has none, so
    refusing the body as unreadable (Go, the reference receiver) and reading it (Node, Python)
    are both right, and its echo is the digits, the same infinity or JSON.stringify's `null`."""
    for literal in ("1e400", "-1e400", "1" + "0" * 400):
        content = _with_number(literal)
        model = x.expected_response(content)
        assert _compare(model, 400, x.refusal(x.READ_ERROR)) == [], literal
        sent = json.loads(content)["events"]["failed"][0]
        for echo in (sent["x_number"], None):
            entry = {**sent, "x_number": echo, x.ERROR_DESCRIPTION_KEY: x.INVALID_META}
            assert _compare(model, 200, x.batch_reply(1, [entry])) == [], (literal, echo)
        wrong = {**sent, "x_number": 0, x.ERROR_DESCRIPTION_KEY: x.INVALID_META}
        assert _compare(model, 200, x.batch_reply(1, [wrong])) != [], literal
        assert _compare(model, 400, x.refusal(x.MISSING_PARAMETERS)) != [], literal


def test_a_finite_number_is_never_a_reason_to_refuse_the_body() -> None:
    """1.7976931348623157e308 and 5e-324 are doubles: the batch must be read and answered 200."""
    for literal in ("1.7976931348623157e308", "5e-324", "-0", "9007199254740993"):
        model = x.expected_response(_with_number(literal))
        assert _compare(model, 400, x.refusal(x.READ_ERROR)) != [], literal


def _compare(model: x.Expected, status: int, body: Any) -> list[Difference]:
    want_status, want_body = model.choose(status, body)
    rows = [] if want_status == status else [Difference("status", want_status, status)]
    return rows + difference(want_body, body)
