"""Reading and validating a v2 callback body (PROTOCOL.md section 3), with no I/O.

`read_batch` turns the raw request bytes into a `Batch`: the events that will be processed and the
unprocessed entries, in request order, each carrying its `errorDescription`. A body that cannot be
processed at all raises `PayloadRejected` carrying the 400 reply, so nothing of it is stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from reference_impl import responses as r
from reference_impl.meta import Meta, MetaError, parse_meta

VERSION = "v2"
FAILED = "failed"
SUCCESS = "success"
GROUPS = (FAILED, SUCCESS)

HARD_BOUNCE = "hard_bounce"
SOFT_BOUNCE = "soft_bounce"
SPAM = "spam"
UNSUBSCRIBED = "unsubscribed"
BOUNCE = "bounce"
DELIVERED = "delivered"
FAILED_TYPES = frozenset({HARD_BOUNCE, SOFT_BOUNCE, SPAM, UNSUBSCRIBED, BOUNCE})
SUCCESS_TYPES = frozenset({DELIVERED})

MAX_DEPTH = 64
"""Deeper JSON is refused whole: real callbacks nest four levels, and echoing a deep value back in
an unprocessed entry must never overflow the encoder."""

_EMAIL = re.compile(r"[^\x00-\x20\x7f-\x9f@\ud800-\udfff]+@[^\x00-\x20\x7f-\x9f@\ud800-\udfff]+")
_BAD_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
MAX_EMAIL_LENGTH = 320
_NESTED = (dict, list)


class PayloadRejected(Exception):
    """The whole body is refused; `reply` is the 4xx to send and nothing may be stored."""

    def __init__(self, reply: r.Reply) -> None:
        super().__init__(reply.body[r.ERROR_KEY])
        self.reply = reply


class CallbackEvent(NamedTuple):
    """One event that passed validation, with its meta already decoded."""

    position: int
    group: str
    type: str
    email: str
    meta: str
    parsed_meta: Meta
    description: str | None


@dataclass(frozen=True, slots=True)
class Batch:
    total: int
    accepted: list[CallbackEvent]
    unprocessed: list[dict[str, Any]]

    def reply(self) -> r.Reply:
        return r.batch_reply(self.total, self.unprocessed)


def _reject(message: str) -> PayloadRejected:
    return PayloadRejected(r.error_reply(400, message))


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if type(node) is dict:
            stack.extend((child, depth + 1) for child in node.values() if type(child) in _NESTED)
        elif type(node) is list:
            stack.extend((child, depth + 1) for child in node if type(child) in _NESTED)
    return False


def decode_body(body: bytes) -> Any:
    """Bytes to JSON value; anything unreadable is the page's 'reading input stream' error."""
    if not body:
        raise _reject(r.READ_ERROR)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _reject(r.READ_ERROR) from exc


def event_groups(document: Any) -> list[tuple[str, list[Any]]]:
    """Check the envelope and return the event lists in the order the request gave them."""
    if type(document) is not dict or document.get("version") != VERSION:
        raise _reject(r.MISSING_PARAMETERS)
    events = document.get("events")
    if type(events) is not dict:
        raise _reject(r.MISSING_PARAMETERS)
    groups = [(key, value) for key, value in events.items() if key in GROUPS]
    if not groups or any(type(value) is not list for _, value in groups):
        raise _reject(r.MISSING_PARAMETERS)
    if sum(len(value) for _, value in groups) > r.MAX_EVENTS:
        raise _reject(r.TOO_MANY_EVENTS)
    if _too_deep(document):
        raise _reject(r.READ_ERROR)
    return groups


def valid_email(value: object) -> bool:
    if type(value) is not str or len(value) > MAX_EMAIL_LENGTH:
        return False
    return _EMAIL.fullmatch(value) is not None


def check_event(group: str, event: dict[str, Any], position: int) -> CallbackEvent | str:
    """Return the validated event, or the errorDescription that explains why it is not valid.

    Checks run in a fixed order (type, meta, email, description) so an event with several faults
    always gets the same single description.
    """
    kind = event.get("type")
    if type(kind) is not str or kind not in (FAILED_TYPES if group == FAILED else SUCCESS_TYPES):
        return r.UNMAPPED_TYPE if group == FAILED else r.UNMAPPED_SUCCESS_TYPE
    raw_meta = event.get("meta")
    try:
        meta = parse_meta(raw_meta)
    except MetaError:
        return r.INVALID_META
    email = event.get("email")
    if not valid_email(email):
        return r.INVALID_EMAIL
    description = event.get("description")
    if description is not None and (type(description) is not str or _BAD_TEXT.search(description)):
        return r.INVALID_DESCRIPTION
    return CallbackEvent(position, group, kind, email, raw_meta, meta, description)


def read_batch(body: bytes) -> Batch:
    """Validate a whole callback body; raise `PayloadRejected` if none of it may be processed."""
    groups = event_groups(decode_body(body))
    accepted: list[CallbackEvent] = []
    unprocessed: list[dict[str, Any]] = []
    position = 0
    for group, events in groups:
        for event in events:
            if type(event) is not dict:
                unprocessed.append({"event": event, r.ERROR_DESCRIPTION_KEY: r.NOT_AN_OBJECT})
            else:
                checked = check_event(group, event, position)
                if type(checked) is str:
                    unprocessed.append({**event, r.ERROR_DESCRIPTION_KEY: checked})
                else:
                    accepted.append(checked)
            position += 1
    return Batch(position, accepted, unprocessed)
