"""JSON compared as JSON (issue 11): the same value is equal; precision outside the protocol's
keys is informational; the keys the protocol defines come back exactly."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from simulator.conformance import strategies as cs
from simulator.protocol import expect as x
from simulator.protocol.difference import (
    Echo,
    NonEmptyString,
    difference,
    failing,
    precision_only,
)

EVENT = {
    "type": "hard_bounce",
    "email": "a@example.com",
    "meta": "a@example.com|1568798080|1730714617|20241104|0|wzrk_default|-1|",
}


def perl(number: float) -> float:
    """A number as Perl's core JSON::PP prints it, read back: 15 significant digits."""
    return float(f"{number:.15g}")


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@given(cs.json_values, st.randoms(use_true_random=False))
def test_the_same_json_value_has_no_difference(value: Any, rng: random.Random) -> None:
    """CB-4.10: key order and whitespace are not part of a JSON value; a round trip is equal."""
    text = json.dumps(_shuffled(value, rng), indent=rng.choice([None, 0, 2]))
    assert difference(value, json.loads(text)) == []


def test_numbers_are_values_as_ieee_doubles() -> None:
    assert difference(2**53 + 1, 2**53) == []
    assert difference(6.921887342483613e16, 69218873424836130) == []
    assert difference(1, 1.0) == []
    assert difference(True, 1) != [] and difference(1, True) != []
    assert difference("1", 1) != []


def test_strings_are_exact() -> None:
    assert difference("é", "e\u0301") != []
    assert difference("a ", "a") != []


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_fewer_digits_outside_the_protocol_keys_are_informational(number: float) -> None:
    """CB-4.20: a number printed as JSON::PP prints it is informational in an unknown key."""
    shortened = perl(number)
    rows = difference(Echo({"n": [number]}), {"n": [shortened]})
    assert failing(rows) == []
    assert all(row.informational for row in rows)
    assert bool(rows) == (shortened != number)


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda n: perl(n) != n))
def test_fewer_digits_in_a_protocol_key_fail(number: float) -> None:
    """CB-4.2: type, email, meta and description must come back exactly, numbers included."""
    for key in ("type", "email", "meta", "description"):
        sent = {**EVENT, key: number}
        entry = x.unprocessed_entry(sent, NonEmptyString())
        echoed = {**sent, key: perl(number), "errorDescription": "invalid meta"}
        assert failing(difference(entry, echoed)), key


def test_the_examples_of_issue_11() -> None:
    """0.1234567890123456789 as JSON::PP prints it; 1e400 as JSON.stringify prints it."""
    sent = {**EVENT, "meta": None, "x": 0.1234567890123456789, "big": 10**400}
    entry = x.unprocessed_entry(sent, x.INVALID_META)
    echoed = {**sent, "x": 0.123456789012346, "big": None, "errorDescription": "invalid meta"}
    rows = difference(entry, echoed)
    assert [row.field for row in rows] == ["x", "big"]
    assert failing(rows) == []
    assert "informational" in rows[0].render()


def test_other_differences_outside_the_protocol_keys_still_fail() -> None:
    """Only precision is forgiven: another number, another type or a lost key is a difference."""
    for echoed in (0.2, "0.1", None, [0.1], True):
        assert failing(difference(Echo(0.1), echoed)), echoed
    assert not precision_only(0.1234567890123456, 0.123456789012345)
    assert not precision_only(2**64 + 1, "18446744073709551617")
    assert failing(difference(x.unprocessed_entry({**EVENT, "k": 1}, "d"), {**EVENT}))


def test_the_largest_doubles_printed_at_15_digits_read_back_as_infinity() -> None:
    """1.7976931348623157e308 prints as 1.79769313486232e+308, which a parser reads as inf."""
    assert precision_only(1.7976931348623157e308, float("inf"))
    assert not precision_only(1.0, float("inf"))


def test_an_echo_that_is_not_json_is_refused() -> None:
    """CB-4.11: NaN and Infinity are not JSON, whatever Python's json module reads."""
    for text in ('{"n": NaN}', '{"n": Infinity}', '{"n": -Infinity}'):
        try:
            x.read_reply(text)
        except ValueError as exc:
            assert "is not JSON" in str(exc)
        else:
            raise AssertionError(f"{text} was read as JSON")
    assert x.read_reply(b'{"n": 1e400}') == {"n": float("inf")}
