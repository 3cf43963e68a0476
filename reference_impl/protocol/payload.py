"""Reading and validating a v2 callback body (PROTOCOL.md section 3), with no I/O.

`read_batch` turns the raw request bytes into a `Batch`: the events that will be processed and the
unprocessed entries, in request order, each carrying its `errorDescription`. A body that cannot be
processed at all raises `PayloadRejected` carrying the 400 reply, so nothing of it is stored.

A batch holds up to 1000 events, and checking them one by one costs several times what parsing
the JSON does. So each group is first checked whole, a column at a time, with one regular
expression call per column; only a group with at least one bad or unusual event goes through
`check_event`, one event at a time, which is the reference and names each event's fault.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from typing import Any, NamedTuple

from reference_impl.errors import PlatformError
from reference_impl.protocol import replies as r
from reference_impl.protocol.limits import MAX_DEPTH, MAX_DESCRIPTION_LENGTH, MAX_EMAIL_LENGTH
from reference_impl.protocol.meta import MetaError, one_per_line, parse_meta, well_formed_metas

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
GROUP_TYPES = {FAILED: FAILED_TYPES, SUCCESS: SUCCESS_TYPES}

_EMAIL_SOURCE = r"[^\x00-\x20\x7f-\x9f@\ud800-\udfff]+@[^\x00-\x20\x7f-\x9f@\ud800-\udfff]+"
# RFC 5321 also allows a quoted local part, which may hold an `@` (`"john@home"@example.com`);
# the meta codec accepts such a recipient, so the event's `email` must too.
_QUOTED_EMAIL_SOURCE = (
    r'"[^\x00-\x20\x7f-\x9f"\\\ud800-\udfff]*"@[^\x00-\x20\x7f-\x9f@\ud800-\udfff]+'
)
_EMAIL = re.compile(f"{_EMAIL_SOURCE}|{_QUOTED_EMAIL_SOURCE}")
_EMAIL_BLOCK = re.compile(f"(?:{_EMAIL_SOURCE}\n)*{_EMAIL_SOURCE}")
_BAD_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_NESTED = (dict, list)
_NESTED_TYPES = frozenset(_NESTED)
_OPTIONAL_TEXT = frozenset({str, type(None)})


class PayloadRejected(PlatformError):
    """The whole body is refused; `reply` is the 4xx to send and nothing may be stored."""

    def __init__(self, reply: r.Reply) -> None:
        super().__init__(reply.body[r.ERROR_KEY])
        self.reply = reply


class CallbackEvent(NamedTuple):
    """One event that passed validation; its meta is valid and kept as received."""

    position: int
    group: str
    type: str
    email: str
    meta: str
    description: str | None


@dataclass(slots=True)
class Accepted:
    """The events to process, column by column, in request order.

    Columns, not one object per event: the store writes them with a few multi-row inserts, and
    building a thousand objects would cost as much as checking the events did. The metas are
    valid but kept as received; the store decodes them (`meta_columns`) after answering.
    """

    positions: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    metas: list[str] = field(default_factory=list)
    descriptions: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.positions)

    def append(self, event: CallbackEvent) -> None:
        self.positions.append(event.position)
        self.groups.append(event.group)
        self.types.append(event.type)
        self.emails.append(event.email)
        self.metas.append(event.meta)
        self.descriptions.append(event.description)


@dataclass(frozen=True, slots=True)
class Batch:
    total: int
    accepted: Accepted
    unprocessed: list[dict[str, Any]]

    def reply(self) -> r.Reply:
        return r.batch_reply(self.total, self.unprocessed)


def _reject(message: str) -> PayloadRejected:
    return PayloadRejected(r.error_reply(400, message))


def _too_deep(value: Any) -> bool:
    """Walk the containers one nesting level at a time; the per-value work stays in C, since a
    1000-event body has tens of thousands of values and nearly none of them are containers."""
    level = [value] if type(value) in _NESTED else []
    for _ in range(MAX_DEPTH):
        dicts = [node for node in level if type(node) is dict]
        lists = [node for node in level if type(node) is list]
        children = list(chain(chain.from_iterable(map(dict.values, dicts)), *lists))
        level = list(compress(children, map(_NESTED_TYPES.__contains__, map(type, children))))
        if not level:
            return False
    return True


def _without_groups(document: dict[str, Any], flat: set[str]) -> dict[str, Any]:
    """The document with the `flat` groups emptied: what is left for the nesting walk.

    A group accepted whole whose events hold no key but the checked ones nests exactly four
    levels, so walking its thousands of values again would find nothing.
    """
    if not flat:
        return document
    events = {key: [] if key in flat else value for key, value in document["events"].items()}
    return {**document, "events": events}


def _not_json(literal: str) -> float:
    raise ValueError(f"{literal} is not JSON (RFC 8259)")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{literal} overflows a double")
    return value


RFC_8259 = json.JSONDecoder(parse_constant=_not_json)
"""JSON as RFC 8259 and PROTOCOL.md section 4 have it: Python's parser also takes `NaN`, `Infinity`
and `-Infinity`, which are not JSON. Certification reads a vendor's callbacks with it."""
# The receiver's reading is stricter still: Python reads 1e999 as inf, which would be echoed in a
# reply and stored, so a reply or a replayed body would not be JSON.
_STRICT = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)


def decode_body(body: bytes) -> Any:
    """Bytes to JSON value; anything unreadable, or not strict JSON, is the page's 'reading input
    stream' error."""
    if not body:
        raise _reject(r.READ_ERROR)
    try:
        return _STRICT.decode(body.decode("utf-8"))
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
    return groups


def valid_email(value: object) -> bool:
    if type(value) is not str or len(value) > MAX_EMAIL_LENGTH:
        return False
    return _EMAIL.fullmatch(value) is not None


def _valid_description(value: object) -> bool:
    if type(value) is not str or len(value) > MAX_DESCRIPTION_LENGTH:
        return False
    return _BAD_TEXT.search(value) is None


def check_event(group: str, event: dict[str, Any], position: int) -> CallbackEvent | str:
    """Return the validated event, or the errorDescription that explains why it is not valid.

    Checks run in a fixed order (type, meta, email, description) so an event with several faults
    always gets the same single description.
    """
    kind = event.get("type")
    if type(kind) is not str or kind not in GROUP_TYPES[group]:
        return r.UNMAPPED_TYPE if group == FAILED else r.UNMAPPED_SUCCESS_TYPE
    meta = event.get("meta")
    try:
        parse_meta(meta)
    except MetaError:
        return r.INVALID_META
    email = event.get("email")
    if not valid_email(email):
        return r.INVALID_EMAIL
    description = event.get("description")
    if description is not None and not _valid_description(description):
        return r.INVALID_DESCRIPTION
    return CallbackEvent(position, group, kind, email, meta, description)


def _column(events: list[dict[str, Any]], key: str) -> list[Any]:
    return list(map(dict.get, events, repeat(key)))


def _all_emails(emails: list[str]) -> bool:
    """True if every value is a valid email, checked one per line with a single regex call."""
    if max(map(len, emails)) > MAX_EMAIL_LENGTH:
        return False
    joined = one_per_line(emails)
    return joined is not None and _EMAIL_BLOCK.fullmatch(joined) is not None


def _accept_whole_group(group: str, events: list[Any], start: int, accepted: Accepted) -> bool:
    """Accept every event of the group at once if all are valid; False leaves `accepted` as it was.

    It may return False for a group that is valid (a pipe in a meta's email, say); it must never
    accept an event that `check_event` would refuse, which a property test checks.
    """
    if not events or set(map(type, events)) != {dict}:
        return False
    types = _column(events, "type")
    metas = _column(events, "meta")
    emails = _column(events, "email")
    descriptions = _column(events, "description")
    if set(map(type, types)) != {str} or not GROUP_TYPES[group].issuperset(types):
        return False
    if set(map(type, metas)) != {str} or set(map(type, emails)) != {str}:
        return False
    if not _OPTIONAL_TEXT.issuperset(map(type, descriptions)):
        return False
    if max(map(len, filter(None, descriptions)), default=0) > MAX_DESCRIPTION_LENGTH:
        return False
    if not _all_emails(emails) or _BAD_TEXT.search("".join(filter(None, descriptions))):
        return False
    if not well_formed_metas(metas):
        return False
    accepted.positions.extend(range(start, start + len(events)))
    accepted.groups.extend(repeat(group, len(events)))
    accepted.types.extend(types)
    accepted.emails.extend(emails)
    accepted.metas.extend(metas)
    accepted.descriptions.extend(descriptions)
    return True


def _only_checked_keys(events: list[dict[str, Any]], descriptions: list[str | None]) -> bool:
    """Whether events accepted whole hold nothing but type, meta, email and a description.

    Those three were found to be strings, so each event has at least them, plus `description`
    where one was given: any more keys in all means some event carries an unknown one.
    """
    described = len(descriptions) - descriptions.count(None)
    return sum(map(len, events)) == 3 * len(events) + described


def read_batch(body: bytes) -> Batch:
    """Validate a whole callback body; raise `PayloadRejected` if none of it may be processed."""
    document = decode_body(body)
    groups = event_groups(document)
    accepted = Accepted()
    unprocessed: list[dict[str, Any]] = []
    flat: set[str] = set()
    position = 0
    for group, events in groups:
        before = len(accepted)
        if _accept_whole_group(group, events, position, accepted):
            if _only_checked_keys(events, accepted.descriptions[before:]):
                flat.add(group)
            position += len(events)
            continue
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
    if _too_deep(_without_groups(document, flat)):
        raise _reject(r.READ_ERROR)
    return Batch(position, accepted, unprocessed)
