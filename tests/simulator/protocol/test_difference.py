"""JSON compared as JSON (PROTOCOL.md section 4): "An echoed event is compared as a JSON value:
numbers by value as IEEE doubles (what a stock JSON parser in any language keeps), key order and
whitespace ignored." The same value has no difference at all; another double is a difference."""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from simulator.conformance import strategies as cs
from simulator.protocol import expect as x
from simulator.protocol.difference import Difference, difference, same

EVENT = {
    "type": "hard_bounce",
    "email": "a@example.com",
    "meta": "a@example.com|1568798080|1730714617|20241104|0|wzrk_default|-1|",
}
FINITE = st.floats(allow_nan=False, allow_infinity=False)


def perl(number: float) -> float:
    """A number as Perl's core JSON::PP prints it, read back: 15 significant digits."""
    return float(f"{number:.15g}")


def next_double(number: float) -> float:
    """The double just above `number` (for a finite one below the largest)."""
    return math.nextafter(number, math.inf)


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@given(cs.json_values, st.randoms(use_true_random=False))
def test_key_order_and_whitespace_are_no_difference(value: Any, rng: random.Random) -> None:
    """CB-4.20: key order and whitespace are not part of a JSON value; a round trip is equal."""
    text = json.dumps(_shuffled(value, rng), indent=rng.choice([None, 0, 2]))
    assert difference(value, json.loads(text)) == []


@given(FINITE)
def test_a_double_echoed_by_any_stock_printer_is_the_same_value(number: float) -> None:
    """CB-4.20: shortest round trip (Node, Python), 17 digits (Java, C) or an integer's digits."""
    for echoed in (json.loads(repr(number)), float(f"{number:.17g}")):
        assert difference({"n": [number]}, {"n": [echoed]}) == []
    if number.is_integer():
        assert difference(number, int(number)) == []


def test_numbers_equal_as_ieee_doubles_are_simply_equal() -> None:
    """CB-4.20: beyond 2^53, 1.0 and 1, -0 and 0: one double each, so no row at all."""
    assert difference(2**53 + 1, 2**53) == []
    assert difference(-(2**63) - 1, -(2**63)) == []
    assert difference(2**64 + 1, 18446744073709552000) == []
    assert difference(6.921887342483613e16, 69218873424836130) == []
    assert difference(1, 1.0) == [] and difference(1.0, 1) == []
    assert difference(-0.0, 0) == [] and difference(0, -0.0) == []
    assert struct.pack(">d", -0.0) != struct.pack(">d", 0.0)  # two bit patterns, one IEEE value


@given(FINITE.filter(lambda n: abs(n) < 1.7976931348623157e308))
def test_another_double_is_a_difference(number: float) -> None:
    """CB-4.20: the neighbouring double is another number, in any key, however close."""
    other = next_double(number)
    assert difference({**EVENT, "n": number}, {**EVENT, "n": other}) == [
        Difference("n", number, other)
    ]


@given(FINITE.filter(lambda n: perl(n) != n))
def test_fewer_digits_are_a_difference_in_every_key(number: float) -> None:
    """CB-4.20: a number echoed at 15 digits (JSON::PP) is another double, so another value."""
    for key in ("type", "email", "meta", "description", "x_number"):
        sent = {**EVENT, key: number}
        entry = x.unprocessed_entry(sent, x.INVALID_META)
        echoed = {**sent, key: perl(number), "errorDescription": x.INVALID_META}
        assert [row.field for row in difference(entry, echoed)] == [key]


def test_other_differences_are_rows() -> None:
    """Another type, `true` for 1, or a lost key is a difference."""
    for echoed in ("0.1", None, [0.1], True):
        assert difference(0.1, echoed) != [], echoed
    assert difference(True, 1) != [] and difference(1, True) != []
    assert difference({**EVENT, "k": 1}, EVENT) != []


def test_strings_are_exact() -> None:
    assert difference("é", "e\u0301") != []
    assert difference("a ", "a") != []


def test_a_number_beyond_the_double_range_comes_back_as_its_infinity_or_null() -> None:
    """1e400 has no double: a stock parser reads infinity, which JSON cannot write. The digits
    sent, any number that is the same infinity, or `null` (JSON.stringify's) is its echo."""
    for sent in (10**400, float("inf")):
        for echoed in (10**400, 10**401, float("inf"), None):
            assert same(sent, echoed), (sent, echoed)
        for echoed in (-(10**400), 1.7976931348623157e308, "Infinity", 0, False):
            assert not same(sent, echoed), (sent, echoed)
    assert same(-(10**400), None) and same(-(10**400), float("-inf"))
    assert not same(-(10**400), float("inf"))
    # 2^1024 - 2^970 is halfway past the largest double: every stock parser rounds it to infinity.
    assert same(2**1024 - 2**970, None)
    assert difference(1.7976931348623157e308, None) != []


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
