"""The JSON answers every blueprint shares: one shape, one content type, and query checking.

Every answer of the receiver is JSON of the protocol's shape (`protocol.replies`), so an ESP or a
script reading the API never has to parse two formats.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

from reference_impl.errors import PlatformError
from reference_impl.protocol import replies as r

JSON_TYPE = "application/json"


class QueryError(PlatformError):
    """A read-endpoint query parameter is malformed."""


def json_response(status: int, body: Any) -> Response:
    """Strict JSON out: a body that is not RFC 8259 (NaN, Infinity) is a 500, never sent."""
    return Response(json.dumps(body, allow_nan=False), status=status, mimetype=JSON_TYPE)


def reply(answer: r.Reply) -> Response:
    return json_response(answer.status, answer.body)


def not_found(message: str) -> Response:
    return reply(r.error_reply(404, message))


def query_int(name: str) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise QueryError(f"query parameter {name!r} must be an integer, got {value!r}") from None
