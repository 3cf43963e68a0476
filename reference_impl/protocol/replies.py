"""Every reply the receiver sends, as named constants and pure builders (PROTOCOL.md section 4).

Like aiosmtpd's `statuscodes`, the exact strings live here once, so the app, the tests and the
OpenAPI description cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reference_impl.protocol.limits import MAX_EVENTS as MAX_EVENTS  # the replies name it

# Top-level error messages, word for word from the vendor's page.
READ_ERROR = "Exception occurred while reading input stream"
MISSING_PARAMETERS = "Bad request. Some mandatory parameters were missing."
TOO_MANY_EVENTS = "More than allowed events received."
SERVER_ERROR = "Server error"

# Our own top-level errors for HTTP-level refusals; same shape, so a client parses one format.
UNAUTHORIZED = "Unauthorized: the callback token is missing or wrong."
BODY_TOO_LARGE = "Request body too large."
NOT_FOUND = "Not found."
METHOD_NOT_ALLOWED = "Method not allowed."
READ_UNAUTHORIZED = "Unauthorized: the read API token is missing or wrong."
RESET_CROSS_SITE = "Forbidden: a reset sent by another site's page is refused."
RESET_PUBLIC = (
    "Forbidden: this receiver serves public reads (--public-read) without a read token, so it"
    " allows no reset; give it --read-token to reset with it."
)
# Refusals of the HTTP framing itself, answered by the server before the app sees the request.
MALFORMED_REQUEST = "Bad request: the HTTP request is malformed."
AMBIGUOUS_LENGTH = "Bad request: Content-Length and Transfer-Encoding together."
HEADERS_TOO_LARGE = "Request header fields too large."
NOT_IMPLEMENTED = "Not implemented: unsupported Transfer-Encoding."

# Per-event errorDescription values. The first two are the page's own; the rest follow their style.
INVALID_META = "invalid meta"
UNMAPPED_TYPE = "Could not map event to any bounce type"
UNMAPPED_SUCCESS_TYPE = "Could not map event to any delivery type"
INVALID_EMAIL = "invalid email"
INVALID_DESCRIPTION = "invalid description"
NOT_AN_OBJECT = "event is not a JSON object"

ERROR_KEY = "error"
TOTAL_KEY = "TOTAL_EVENTS"
PROCESSED_KEY = "PROCESSED_EVENTS"
UNPROCESSED_KEY = "UNPROCESSED_EVENTS"
ERROR_DESCRIPTION_KEY = "errorDescription"


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP status and the JSON body that goes with it."""

    status: int
    body: dict[str, Any]


def failed_count_message(count: int) -> str:
    return f"{count} event(s) failed to process"


def error_reply(status: int, message: str) -> Reply:
    """Whole-request refusal: nothing was processed, so every count is zero."""
    return Reply(
        status,
        {ERROR_KEY: message, TOTAL_KEY: 0, PROCESSED_KEY: 0, UNPROCESSED_KEY: []},
    )


def batch_reply(total: int, unprocessed: list[dict[str, Any]]) -> Reply:
    """200 for a readable batch; the `error` key appears only when some events failed."""
    body: dict[str, Any] = {}
    if unprocessed:
        body[ERROR_KEY] = failed_count_message(len(unprocessed))
    body[TOTAL_KEY] = total
    body[PROCESSED_KEY] = total - len(unprocessed)
    body[UNPROCESSED_KEY] = unprocessed
    return Reply(200, body)
