"""The JSON answers every blueprint shares: one shape, one content type, and query checking.

Every answer of the receiver is JSON of the protocol's shape (`protocol.replies`), so an ESP or a
script reading the API never has to parse two formats.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response, request

from reference_impl.errors import PlatformError
from reference_impl.protocol import replies as r

JSON_TYPE = "application/json"
# The store keeps ids as SQLite integers: signed 64-bit.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_FLAGS = {"true": True, "1": True, "false": False, "0": False}


class QueryError(PlatformError):
    """A read-endpoint query parameter is malformed."""


def json_response(status: int, body: Any) -> Response:
    """Strict JSON out: a body that is not RFC 8259 (NaN, Infinity) is a 500, never sent."""
    return Response(json.dumps(body, allow_nan=False), status=status, mimetype=JSON_TYPE)


def reply(answer: r.Reply) -> Response:
    return json_response(answer.status, answer.body)


def not_found(message: str) -> Response:
    return reply(r.error_reply(404, message))


def query_int(name: str, low: int = INT64_MIN, high: int = INT64_MAX) -> int | None:
    """The query parameter `name` as an integer in [low, high], None when absent or empty."""
    value = request.args.get(name)
    if value is None or value == "":
        return None
    return checked_int(f"query parameter {name!r}", value, low, high)


def query_flag(name: str) -> bool:
    """The query parameter `name` as a switch: `true` or `1` turns it on, `false`, `0`, empty or
    absent leave it off; anything else is a QueryError, not silently off."""
    value = request.args.get(name)
    if value is None or value == "":
        return False
    if value not in _FLAGS:
        raise QueryError(f"query parameter {name!r} must be true or false, got {value!r}")
    return _FLAGS[value]


def checked_int(what: str, value: str, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """Plain ASCII decimal digits only (no `+`, `_`, spaces or other scripts' digits), in range."""
    if not _INTEGER.fullmatch(value):
        raise QueryError(f"{what} must be an integer, got {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise QueryError(f"{what} must be between {low} and {high}, got {value}")
    return number
