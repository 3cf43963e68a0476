"""What a conforming receiver must answer to a given request body: PROTOCOL.md sections 3 and 4.

Written from PROTOCOL.md alone, without importing the reference receiver's validation, reply
builder or meta codec, so that a bug there cannot hide in the checker. Pure functions, no I/O.

The model separates what the protocol fixes from what it leaves open. Where PROTOCOL.md is explicit
the expectation is an exact value; where it is silent (the wording of the email error, which of
several faults in one event is reported, whether a non-ASCII meta is "malformed") the expectation
is a `Matcher`, or an event whose outcome is `EITHER`. Those open points are pinned down separately
by SHOULD or INFORMATIONAL requirements, so a MUST failure always means the page (or a protocol
invariant) was broken. `readings=True` decides the open points as docs/PROTOCOL.md reads them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any, NamedTuple

from simulator.protocol.difference import (
    Matcher,
    NonEmptyString,
    OneOf,
    beyond_doubles,
    difference,
)

# Top-level error messages, word for word from PROTOCOL.md section 4.
READ_ERROR = "Exception occurred while reading input stream"
MISSING_PARAMETERS = "Bad request. Some mandatory parameters were missing."
TOO_MANY_EVENTS = "More than allowed events received."

# Per-event errorDescription values fixed by PROTOCOL.md section 4.
INVALID_META = "invalid meta"
UNMAPPED_TYPE = "Could not map event to any bounce type"
# The email message is only required to be "of the same style"; this is the SHOULD-level wording.
INVALID_EMAIL = "invalid email"
NOT_AN_OBJECT = "event is not a JSON object"

ERROR_KEY = "error"
TOTAL_KEY = "TOTAL_EVENTS"
PROCESSED_KEY = "PROCESSED_EVENTS"
UNPROCESSED_KEY = "UNPROCESSED_EVENTS"
ERROR_DESCRIPTION_KEY = "errorDescription"

VERSION = "v2"
MAX_EVENTS = 1000
FAILED_TYPES = ("hard_bounce", "soft_bounce", "spam", "unsubscribed", "bounce")
SUCCESS_TYPES = ("delivered",)
META_FIELD_COUNT = 8

# Section 5: what a processed event raises, and which types unsubscribe the meta's recipient.
NOTIFICATION_FAILED = "Notification Failed"
CHANNEL_UNSUBSCRIBED = "Channel Unsubscribed"
ERROR_NAMES = {"hard_bounce": "hard bounce", "soft_bounce": "soft bounce"}
"""The types that raise Notification Failed, with its `Error` property."""
UNSUBSCRIBING = frozenset({"hard_bounce", "spam", "unsubscribed", "bounce"})


def failed_message(count: int) -> str:
    return f"{count} event(s) failed to process"


def refusal(message: Any) -> dict[str, Any]:
    """The body of every 400: PROTOCOL.md section 4 gives one shape with zero counts."""
    return {ERROR_KEY: message, TOTAL_KEY: 0, PROCESSED_KEY: 0, UNPROCESSED_KEY: []}


class Outcome(Enum):
    PROCESSED = "processed"
    UNPROCESSED = "unprocessed"
    EITHER = "either"
    """PROTOCOL.md does not decide; a receiver may process or refuse the event."""


class Verdict(NamedTuple):
    """The model's decision for one event of a readable batch.

    A named tuple, not a frozen dataclass: the fake ESP asks for one per event it breaks or sends
    without a meta, and a frozen dataclass sets each field through `object.__setattr__`.
    """

    outcome: Outcome
    description: Any = None
    """errorDescription expected when unprocessed: an exact string or a Matcher."""
    reasons: tuple[str, ...] = ()


_ASCII_DIGITS = re.compile(r"[0-9]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
DECIDED_DEPTH = 32
"""JSON nested deeper than this may be refused as unreadable; PROTOCOL.md sets no limit."""
_SIGNED_DIGITS = re.compile(r"-?[0-9]+")
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]*")
_CLEARLY_VALID_EMAIL = re.compile(
    r"[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}"
)


class Judgement(Enum):
    VALID = "valid"
    INVALID = "invalid"
    OPEN = "open"
    """The protocol text does not settle it."""


def meta_layout(value: Any) -> Judgement:
    """PROTOCOL.md section 2, a reading: 8 "|"-separated fields, the last empty, date = UTC(send).

    The page defines no layout at all (the layout is inferred from its four samples), so a meta
    off this layout is refused only under the readings (`strict`), never as a MUST.
    """
    if not isinstance(value, str) or not value:
        return Judgement.INVALID
    parts = value.rsplit("|", META_FIELD_COUNT - 1)
    if len(parts) != META_FIELD_COUNT:
        return Judgement.INVALID
    email, account, sent_at, date, variant, label, message_id, trailer = parts
    if trailer:
        return Judgement.INVALID
    local, at, domain = email.rpartition("@")
    if not (at and local and domain) or not label:
        return Judgement.INVALID
    if not all(_ASCII_DIGITS.fullmatch(text) for text in (account, sent_at, variant)):
        return Judgement.INVALID
    if not _SIGNED_DIGITS.fullmatch(message_id):
        return Judgement.INVALID
    try:
        send_date = datetime.fromtimestamp(int(sent_at), UTC).strftime("%Y%m%d")
    except (OverflowError, OSError, ValueError):
        return Judgement.INVALID
    if date != send_date:
        return Judgement.INVALID
    # Section 2 wants a byte-exact header value but never says which characters a meta may hold,
    # nor how a '|' inside the address is to be read: those are left to the receiver.
    if not _VISIBLE_ASCII.fullmatch(value) or "|" in email:
        return Judgement.OPEN
    return Judgement.VALID


def judge_meta(value: Any, readings: bool = False) -> Judgement:
    """The page requires a meta (its sample refuses a missing one as `invalid meta`), nothing more.

    A meta in the section 2 layout must be processed; missing (or null) must be refused; anything
    else is open unless `readings` applies the project's reading (empty, non-string or off the
    layout is `invalid meta`).
    """
    if value is None:
        return Judgement.INVALID
    layout = meta_layout(value)
    if readings or layout is Judgement.VALID:
        return layout
    return Judgement.OPEN


def email_reading(value: Any) -> Judgement:
    """The reading of "missing or malformed": only plainly good and plainly bad addresses."""
    if not isinstance(value, str):
        return Judgement.INVALID
    if _CLEARLY_VALID_EMAIL.fullmatch(value) and len(value) <= 254:
        return Judgement.VALID
    local, at, domain = value.rpartition("@")
    if '"' in value:
        return Judgement.OPEN  # a quoted local part may hold spaces and '@'
    if not at or not local or not domain or any(ch.isspace() for ch in value):
        return Judgement.INVALID
    return Judgement.OPEN


def judge_email(value: Any, readings: bool = False) -> Judgement:
    """The page marks email Required: missing (or null) is refused; its form is our reading."""
    if value is None:
        return Judgement.INVALID
    judgement = email_reading(value)
    if readings or judgement is Judgement.VALID:
        return judgement
    return Judgement.OPEN


def _description(candidates: list[Any]) -> Any:
    """The errorDescription of a refused event: exact if only one fault can explain it.

    Which of several faults a receiver reports is its own choice (CB-4.15 is informational), so
    with more than one candidate any of their wordings is accepted.
    """
    unique: list[Any] = []
    for candidate in candidates:
        if isinstance(candidate, Matcher):
            return NonEmptyString()
        if candidate not in unique:
            unique.append(candidate)
    return unique[0] if len(unique) == 1 else OneOf(*unique)


_FIELD_JUDGES = (
    ("meta", judge_meta, INVALID_META),
    ("email", judge_email, NonEmptyString()),
)
"""Each required field, its judge, and the errorDescription of its fault."""


def judge_event(
    event: Any, allowed_types: tuple[str, ...] = FAILED_TYPES, readings: bool = False
) -> Verdict:
    """One event's outcome and, if refused, its errorDescription (PROTOCOL.md sections 3-4)."""
    if not isinstance(event, dict):
        # Section 4: unprocessed entries are exactly the failed events; the entry's form is open.
        return Verdict(Outcome.UNPROCESSED, NonEmptyString(), ("not an object",))
    faults: list[tuple[str, Any]] = []
    open_points: list[tuple[str, Any]] = []
    event_type = event.get("type")
    if not isinstance(event_type, str) or event_type not in allowed_types:
        faults.append(("type", UNMAPPED_TYPE))
    for name, judge, description in _FIELD_JUDGES:
        judgement = judge(event.get(name), readings)
        if judgement is Judgement.INVALID:
            faults.append((name, description))
        elif judgement is Judgement.OPEN:
            open_points.append((name, description))
    description = event.get("description")
    if "description" in event and (
        not isinstance(description, str) or _CONTROL.search(description)
    ):
        # "Optional free text": whether null, a number or control characters are free text is
        # left open (the reference receiver refuses control characters as invalid description).
        open_points.append(("description", NonEmptyString()))
    candidates = [text for _, text in faults + open_points]
    if faults:
        return Verdict(
            Outcome.UNPROCESSED, _description(candidates), tuple(name for name, _ in faults)
        )
    if open_points:
        return Verdict(
            Outcome.EITHER, _description(candidates), tuple(name for name, _ in open_points)
        )
    return Verdict(Outcome.PROCESSED)


@dataclass(frozen=True, slots=True)
class Expected:
    """What a conforming receiver answers: a status and a body, possibly with open points."""

    status: Any
    body: Any
    events: tuple[Any, ...] = ()
    verdicts: tuple[Verdict, ...] = field(default=())
    reason: str = ""
    refusal: Any = None
    """A 400 body the page also allows for this batch (an event that is not an object)."""

    @property
    def determined(self) -> bool:
        return all(v.outcome is not Outcome.EITHER for v in self.verdicts)

    def choose(self, actual_status: Any, actual_body: Any) -> tuple[Any, Any]:
        """The status and body to compare the actual reply with, among those the protocol allows."""
        if self.refusal is not None and actual_status == 400:
            return 400, self.refusal
        return self.status, self.resolve(actual_body)

    def resolve(self, actual_body: Any) -> Any:
        """The concrete expected body, settling each EITHER event by what the receiver did.

        An open event counts as refused when the next unclaimed entry of UNPROCESSED_EVENTS is that
        event echoed back; everything PROTOCOL.md fixes (order, the echo, the counts, the error
        message) is still compared exactly against that choice.
        """
        if self.body is not None:
            return self.body
        entries = actual_body.get(UNPROCESSED_KEY) if isinstance(actual_body, dict) else None
        entries = entries if isinstance(entries, list) else []
        unprocessed: list[Any] = []
        cursor = 0
        for event, verdict in zip(self.events, self.verdicts, strict=True):
            entry = unprocessed_entry(event, verdict.description)
            if verdict.outcome is Outcome.UNPROCESSED or (
                verdict.outcome is Outcome.EITHER
                and cursor < len(entries)
                and not difference(entry, entries[cursor])
            ):
                unprocessed.append(entry)
                cursor += 1
        return batch_reply(len(self.events), unprocessed)


def unprocessed_entry(event: Any, description: Any) -> Any:
    """Section 4: an unprocessed entry is "the event as sent, plus errorDescription"."""
    if isinstance(event, dict):
        return {**event, ERROR_DESCRIPTION_KEY: description}
    return _NonObjectEntry()


def non_object_entry(event: Any) -> dict[str, Any]:
    """The project's decision (CB-4.14) for the entry of an event that is not an object."""
    return {"event": event, ERROR_DESCRIPTION_KEY: NOT_AN_OBJECT}


class _NonObjectEntry(Matcher):
    """A refused non-object event: any object carrying an errorDescription (the form is open)."""

    def matches(self, actual: Any) -> bool:
        return isinstance(actual, dict) and NonEmptyString().matches(
            actual.get(ERROR_DESCRIPTION_KEY)
        )

    def __repr__(self) -> str:
        return "<an object with a non-empty errorDescription>"


class DocumentedShape(Matcher):
    """Section 4's reply shape, for the inputs whose exact answer PROTOCOL.md leaves open."""

    def matches(self, actual: Any) -> bool:
        if not isinstance(actual, dict):
            return False
        if not set(actual) <= {ERROR_KEY, TOTAL_KEY, PROCESSED_KEY, UNPROCESSED_KEY}:
            return False
        counts = [actual.get(TOTAL_KEY), actual.get(PROCESSED_KEY)]
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            return False
        entries = actual.get(UNPROCESSED_KEY)
        if not isinstance(entries, list) or counts[0] != counts[1] + len(entries):
            return False
        if ERROR_KEY in actual and not NonEmptyString().matches(actual[ERROR_KEY]):
            return False
        return all(_NonObjectEntry().matches(entry) for entry in entries)

    def __repr__(self) -> str:
        return (
            "<a reply of the documented shape: TOTAL_EVENTS == PROCESSED_EVENTS"
            " + len(UNPROCESSED_EVENTS), optional error string>"
        )


def batch_reply(total: int, unprocessed: list[Any]) -> dict[str, Any]:
    """Section 4's 200 body: `error` only when something failed, counts that add up."""
    body: dict[str, Any] = {}
    if unprocessed:
        body[ERROR_KEY] = failed_message(len(unprocessed))
    body[TOTAL_KEY] = total
    body[PROCESSED_KEY] = total - len(unprocessed)
    body[UNPROCESSED_KEY] = unprocessed
    return body


class _Unparseable(Exception):
    pass


NOT_A_JSON_NUMBER = "{} is not JSON (RFC 8259 has no NaN or Infinity)"


def _refuse_constant(name: str) -> Any:
    raise ValueError(NOT_A_JSON_NUMBER.format(name))


def read_reply(content: bytes | str) -> Any:
    """A receiver's reply as JSON by RFC 8259, or ValueError saying why it is not.

    Python's `json` reads `NaN` and `Infinity`, which no other stock parser accepts: a reply that
    echoes them is not JSON, whatever number was sent.
    """
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    return json.loads(text, parse_constant=_refuse_constant)


def _decode(content: bytes) -> Any:
    try:
        text = content.decode("utf-8")
        return json.loads(
            text,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Unparseable(str(exc)) from exc


def _readable_by_detection(content: bytes) -> bool:
    try:
        json.loads(content)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True


class _NonStandardConstant(Exception):
    """NaN or Infinity: not JSON by RFC 8259, yet many parsers read it; PROTOCOL.md is silent."""


def _reject_constant(name: str) -> Any:
    raise _NonStandardConstant(name)


def expected_response(content: bytes, readings: bool = False) -> Expected:
    """The reply the protocol requires for a `POST` of `content` to the callback URL.

    By default only what the page fixes is decided; `readings` applies the project's reading of
    the open points too (strict JSON, the meta layout, the email form), as `--strict` does.
    """
    try:
        payload = _decode(content)
    except _Unparseable:
        if _readable_by_detection(content) and not readings:
            # RFC 8259 wants UTF-8 without a BOM, yet common parsers (Python's json, Flask's
            # get_json) also detect a BOM, UTF-16 and UTF-32. The page does not say which.
            return Expected(
                OneOf(200, 400), DocumentedShape(), reason="JSON in another Unicode encoding"
            )
        return Expected(400, refusal(READ_ERROR), reason="the body is not readable JSON")
    except _NonStandardConstant:
        if readings:
            return Expected(400, refusal(READ_ERROR), reason="NaN and Infinity are not JSON")
        return Expected(OneOf(200, 400), DocumentedShape(), reason="the body uses NaN or Infinity")
    except RecursionError:
        # Deep nesting: readable JSON for some parsers, not for others; only the shape is fixed.
        return Expected(
            OneOf(200, 400), DocumentedShape(), reason="the body nests too deeply to decide"
        )
    return expected_for(payload, readings)


def expected_for(payload: Any, readings: bool = False) -> Expected:
    """`expected_response` for a body already decoded (as the fake ESP has it)."""
    depth, overflows = _measure(payload)
    if depth > DECIDED_DEPTH:
        return Expected(
            OneOf(200, 400), DocumentedShape(), reason="the body nests deeper than 32 levels"
        )
    expected = _expected_for(payload, readings)
    return _refusable_as_unreadable(expected) if overflows else expected


def _refusable_as_unreadable(expected: Expected) -> Expected:
    """`expected`, also allowing the read error's 400: the body holds a number beyond the doubles.

    RFC 8259 lets a parser limit the range of numbers, and section 4 compares numbers as the
    doubles a stock parser keeps: one with no double (`1e400`, 401 digits) is infinity to the
    parsers that read it and an error to those that refuse it (Go's, the reference receiver's for
    `1e999`). Both answers are right; an echo of it is compared by `difference.same`.
    """
    if not isinstance(expected.status, int):
        return expected  # already open (200 or 400, documented shape)
    if expected.status == 400:
        message = OneOf(expected.body[ERROR_KEY], READ_ERROR)
        return replace(expected, body=refusal(message))
    message = READ_ERROR if expected.refusal is None else OneOf(MISSING_PARAMETERS, READ_ERROR)
    return replace(
        expected,
        refusal=refusal(message),
        reason=f"{expected.reason}, holding a number beyond the double range",
    )


def _expected_for(payload: Any, readings: bool) -> Expected:
    if not isinstance(payload, dict):
        return Expected(
            400,
            refusal(OneOf(MISSING_PARAMETERS, READ_ERROR)),
            reason="the top level is not a JSON object",
        )
    if payload.get("version") != VERSION:
        return Expected(400, refusal(MISSING_PARAMETERS), reason='version is not "v2"')
    events = payload.get("events")
    if not isinstance(events, dict):
        return Expected(400, refusal(MISSING_PARAMETERS), reason="events is not an object")
    failed = events.get("failed")
    success = events.get("success")
    if "failed" in events and not isinstance(failed, list):
        return Expected(400, refusal(MISSING_PARAMETERS), reason="events.failed is not a list")
    if "failed" not in events and "success" not in events:
        return Expected(400, refusal(MISSING_PARAMETERS), reason="events.failed is missing")
    if "success" in events and not isinstance(success, list):
        # Section 3 describes `success` as a list; a wrong type is a bad top-level key.
        return Expected(400, refusal(MISSING_PARAMETERS), reason="events.success is not a list")
    failed = failed if isinstance(failed, list) else []
    success = success if isinstance(success, list) else []
    if len(failed) + len(success) > MAX_EVENTS:
        return Expected(400, refusal(TOO_MANY_EVENTS), reason="more than 1000 events")
    verdicts = [judge_event(event, readings=readings) for event in failed]
    verdicts += [judge_delivery(event, readings) for event in success]
    if "failed" not in events:
        # Only `success`: section 3 calls `failed` required and `success` optional, so a
        # success-only batch is a reading the text leaves open. Both answers must be well formed.
        return Expected(
            OneOf(200, 400), DocumentedShape(), reason="events.failed is missing, success present"
        )
    # "400 [...] when the payload format is incorrect": an event that is not an object may
    # refuse the whole batch, or be listed as unprocessed; the page allows either.
    whole = (
        refusal(MISSING_PARAMETERS)
        if any(not isinstance(event, dict) for event in (*failed, *success))
        else None
    )
    expected = Expected(
        200,
        None,
        tuple(failed) + tuple(success),
        tuple(verdicts),
        reason="a readable batch of at most 1000 events",
        refusal=whole,
    )
    if expected.determined:
        return Expected(
            200,
            expected.resolve({}),
            expected.events,
            expected.verdicts,
            expected.reason,
            whole,
        )
    return expected


def _measure(value: Any) -> tuple[int, bool]:
    """Container nesting depth, and whether a number beyond the double range is held.

    One iterative walk, so a hostile body cannot exhaust the stack and is walked once.
    """
    deepest, overflows = 0, False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node)
        elif not overflows and beyond_doubles(node):
            overflows = True
    return deepest, overflows


def judge_delivery(event: Any, readings: bool = False) -> Verdict:
    """Section 3 accepts `{"type": "delivered", ...}` in `success`; anything else there is open."""
    verdict = judge_event(event, SUCCESS_TYPES, readings)
    if verdict.outcome is Outcome.UNPROCESSED:
        return Verdict(Outcome.EITHER, NonEmptyString(), verdict.reasons)
    return verdict
