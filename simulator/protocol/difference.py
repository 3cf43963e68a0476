"""Field-by-field comparison of an expected reply with the one that came back.

Modelled on pytest-httpserver's `RequestMatcher.difference()`: instead of a bare `assert a == b`,
a check gets a list of `(field, expected, actual)` rows, so a failure report says exactly which
part of the reply was wrong. Pure functions, no I/O.

An expected value is either a plain JSON value or a `Matcher` for the places where PROTOCOL.md
fixes a property rather than a value. A plain value is compared as PROTOCOL.md section 4 compares
an echoed event: as a JSON value, numbers by value as IEEE doubles (what a stock JSON parser in any
language keeps), key order and whitespace ignored (the comparison sees parsed values, never text).
So `1.0` is `1`, `-0` is `0`, and Node's 9007199254740992 for 9007199254740993 is the same number:
no row at all. A number that comes back as another double (15 digits where 17 were sent) is a row
like any other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MISSING = object()
"""Stands in for a key or item that one side has and the other lacks."""


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


ABSENT = _Absent()


class Matcher:
    """An expected value that accepts more than one actual value."""

    def matches(self, actual: Any) -> bool:
        raise NotImplementedError

    def rows(self, actual: Any, path: str) -> list[Difference]:
        """The report rows for `actual`: one naming this matcher, unless it matches."""
        return [] if self.matches(actual) else [Difference(path, self, actual)]

    def __repr__(self) -> str:
        raise NotImplementedError


class NonEmptyString(Matcher):
    """A value PROTOCOL.md requires to be present but whose exact wording it leaves open."""

    def matches(self, actual: Any) -> bool:
        return isinstance(actual, str) and bool(actual.strip())

    def __repr__(self) -> str:
        return "<any non-empty string>"


class OneOf(Matcher):
    """Any of a few exact values, for places where PROTOCOL.md allows either reading."""

    def __init__(self, *options: Any) -> None:
        self.options = options

    def matches(self, actual: Any) -> bool:
        return any(same(option, actual) for option in self.options)

    def __repr__(self) -> str:
        return "one of " + " | ".join(_show(option) for option in self.options)


class StatusIn(Matcher):
    """An HTTP status within a half-open range, e.g. any non-5xx."""

    def __init__(self, low: int, high: int, label: str) -> None:
        self.low, self.high, self.label = low, high, label

    def matches(self, actual: Any) -> bool:
        return isinstance(actual, int) and self.low <= actual < self.high

    def __repr__(self) -> str:
        return f"<{self.label}>"


@dataclass(frozen=True, slots=True)
class Difference:
    """One row of a failure report: where, what PROTOCOL.md expects, what came back."""

    field: str
    expected: Any
    actual: Any

    def columns(self) -> tuple[str, str, str]:
        """Field, expected, got as a report prints them (a terminal line, a table's cells)."""
        return self.field, _show(self.expected), _show(self.actual)

    def render(self) -> str:
        field, expected, got = self.columns()
        return f"  {field}: expected {expected}, got {got}"


def _show(value: Any) -> str:
    if value is MISSING or value is ABSENT:
        return "<absent>"
    if isinstance(value, Matcher):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def as_double(number: int | float) -> float:
    """A JSON number as the IEEE double a stock parser keeps (beyond the range: infinity)."""
    try:
        return float(number)
    except OverflowError:
        return float("inf") if number > 0 else float("-inf")


def is_number(value: Any) -> bool:
    """A JSON number: Python's `bool` is an `int`, JSON's `true` is not a number."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def beyond_doubles(value: Any) -> bool:
    """A number no double holds (`1e400`, 401 digits): stock parsers read infinity or refuse it."""
    return is_number(value) and math.isinf(as_double(value))


def same(expected: Any, actual: Any) -> bool:
    """JSON equality as section 4 has it: `True` is not `1`, numbers as doubles, containers deeply.

    Node echoes 9007199254740993 as 9007199254740992 and 6.921887342483613e+16 as
    69218873424836130: the same double, so the same JSON value to any stock parser.

    A number beyond the double range has no double to compare: it is infinity to the parsers that
    read it, and no JSON printer can write infinity. Its echo is any number a double reads as the
    same infinity (the digits as sent, `1e400`) or `null`, which is what JavaScript's
    `JSON.stringify` writes for the infinity `JSON.parse` gave it (docs/conformance.md, 13).
    """
    if isinstance(expected, Matcher):
        return expected.matches(actual)
    if beyond_doubles(expected):
        return actual is None or (is_number(actual) and as_double(actual) == as_double(expected))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, dict):
        return isinstance(actual, dict) and not difference(expected, actual)
    if isinstance(expected, list):
        return isinstance(actual, list) and not difference(expected, actual)
    if is_number(expected) and is_number(actual):
        return as_double(expected) == as_double(actual)
    return type(expected) is type(actual) and expected == actual


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def difference(expected: Any, actual: Any, path: str = "") -> list[Difference]:
    """Every place `actual` departs from `expected`, deepest field first named in full."""
    if isinstance(expected, Matcher):
        return expected.rows(actual, path or "<value>")
    if isinstance(expected, dict) and isinstance(actual, dict):
        rows: list[Difference] = []
        for key, value in expected.items():
            if key not in actual:
                rows.append(Difference(_join(path, key), value, ABSENT))
            else:
                rows.extend(difference(value, actual[key], _join(path, key)))
        rows.extend(
            Difference(_join(path, key), ABSENT, actual[key])
            for key in actual
            if key not in expected
        )
        return rows
    if isinstance(expected, list) and isinstance(actual, list):
        rows = []
        for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
            rows.extend(difference(want, got, _join(path, index)))
        rows.extend(
            Difference(_join(path, index), expected[index], ABSENT)
            for index in range(len(actual), len(expected))
        )
        rows.extend(
            Difference(_join(path, index), ABSENT, actual[index])
            for index in range(len(expected), len(actual))
        )
        return rows
    if same(expected, actual):
        return []
    return [Difference(path or "<value>", expected, actual)]


def render(rows: Iterable[Difference]) -> str:
    return "\n".join(row.render() for row in rows)
