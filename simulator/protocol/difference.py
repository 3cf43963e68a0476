"""Field-by-field comparison of an expected reply with the one that came back.

Modelled on pytest-httpserver's `RequestMatcher.difference()`: instead of a bare `assert a == b`,
a check gets a list of `(field, expected, actual)` rows, so a failure report says exactly which
part of the reply was wrong. Pure functions, no I/O.

An expected value is either a plain JSON value (compared as JSON: `1 != True`, numbers by value as
IEEE doubles, key order ignored) or a `Matcher` for the places where PROTOCOL.md fixes a property
rather than a value. `Echo` is the matcher for a value the receiver only has to send back: an
event's key the protocol does not define. There a number that differs only in precision (Perl's
JSON::PP prints 15 significant digits) is an informational row, not a failing one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
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
    informational: bool = False
    """Only a number's precision, in a key the protocol does not define: reported, never failed."""

    def columns(self) -> tuple[str, str, str]:
        """Field, expected, got as a report prints them (a terminal line, a table's cells)."""
        return self.field, _show(self.expected), _show(self.actual)

    def render(self) -> str:
        field, expected, got = self.columns()
        note = f" ({PRECISION_ONLY})" if self.informational else ""
        return f"  {field}: expected {expected}, got {got}{note}"


PRECISION_ONLY = "number precision only, in a key the protocol does not define: informational"
PROTOCOL_KEYS = frozenset({"type", "email", "meta", "description"})
"""The event keys the protocol defines: whatever their value, it must come back exactly."""
SIGNIFICANT_DIGITS = 15
"""The fewest digits a stock JSON printer keeps: Perl's core JSON::PP prints `%.15g`."""


def failing(rows: Iterable[Difference]) -> list[Difference]:
    """The rows that fail a comparison: all but the informational ones."""
    return [row for row in rows if not row.informational]


def precision_only(expected: Any, actual: Any) -> bool:
    """Whether `actual` is `expected` printed with fewer digits, as a stock JSON printer may.

    Both numbers that agree to 15 significant digits, or a number beyond the double range echoed
    as `null` (what JavaScript's `JSON.stringify` makes of the infinity its parser read).
    """
    if isinstance(expected, bool) or not isinstance(expected, int | float):
        return False
    wanted = as_double(expected)
    if actual is None:
        return math.isinf(wanted)
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        return False
    got = as_double(actual)
    if math.isinf(wanted):
        return False
    # Printed at 15 digits, the largest doubles round past the range and read back as infinity.
    printed = f"{wanted:.{SIGNIFICANT_DIGITS}g}"
    return printed == f"{got:.{SIGNIFICANT_DIGITS}g}" or float(printed) == got


class Echo(Matcher):
    """A value the receiver sends back as it came, under a key the protocol does not define.

    The same JSON value is expected; a difference that is only a number's precision is an
    informational row (the receiver's JSON printer, not the receiver, chose the digits).
    """

    def __init__(self, value: Any) -> None:
        self.value = value

    def matches(self, actual: Any) -> bool:
        return not failing(self.rows(actual, ""))

    def rows(self, actual: Any, path: str) -> list[Difference]:
        return [
            replace(row, informational=precision_only(row.expected, row.actual))
            for row in difference(self.value, actual, path)
        ]

    def __repr__(self) -> str:
        return _show(self.value)


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


def same(expected: Any, actual: Any) -> bool:
    """JSON equality: `True` is not `1`, numbers by value as IEEE doubles, containers deeply.

    Node echoes 9007199254740993 as 9007199254740992 and 6.921887342483613e+16 as
    69218873424836130: the same double, so the same JSON value to any stock parser.
    """
    if isinstance(expected, Matcher):
        return expected.matches(actual)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, dict):
        return isinstance(actual, dict) and not difference(expected, actual)
    if isinstance(expected, list):
        return isinstance(actual, list) and not difference(expected, actual)
    if isinstance(expected, int | float) and isinstance(actual, int | float):
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
