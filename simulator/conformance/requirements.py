"""The requirement catalogue: every check the conformance suite makes, and where each comes from.

A verdict is only as trustworthy as its source, so every requirement carries a `Source`:

- `page`: a sentence of the vendor's page (`generic-smtp-callbacks.txt`), quoted verbatim;
- `reading`: the project's inference, quoted from `docs/PROTOCOL.md` (the meta layout, say);
- `decision`: a choice the project made where both are silent, quoted from the doc that says so.

The level follows from the source (PROTOCOL.md section 4: "Only `page` rules and the invariants
above may fail another team's receiver as a MUST"). A `page` requirement, or a protocol invariant
(the counts, the order of unprocessed events and the echo compared as JSON), may be a MUST. A
`reading` is at most a SHOULD. A `decision` (the wording of a message the page does not fix, the
order in which a receiver checks fields) is INFORMATIONAL: reported, never failed. `strict`
(`--strict`) promotes every `reading` to a MUST, for teams that want the project's full reading.
The quotes are tested against the page and docs/PROTOCOL.md, so a requirement cannot claim a
sentence its source does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from simulator.errors import SimulatorError

__all__ = [
    "BY_ID",
    "CATALOGUE",
    "Grade",
    "Level",
    "Needs",
    "Requirement",
    "Source",
    "SourceKind",
    "UnknownRequirement",
]

QUOTE_GAP = " [...] "
"""Separates the verbatim fragments of one quote; each fragment appears in the source as is."""

PAGE_FILE = "generic-smtp-callbacks.txt"
READING_FILE = "docs/PROTOCOL.md"
DECISION_FILE = "docs/conformance.md"


class Level(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    INFORMATIONAL = "INFORMATIONAL"


class Grade(StrEnum):
    """What a run says about one requirement, as Autobahn|Testsuite grades a case."""

    PASS = "PASS"
    NON_STRICT = "NON-STRICT"
    """A SHOULD not met: reported, does not fail the run."""
    INFORMATIONAL = "INFORMATIONAL"
    """An INFORMATIONAL requirement not met: the receiver chose differently where it may."""
    FAIL = "FAIL"
    """A MUST not met: the run fails."""


class SourceKind(StrEnum):
    PAGE = "page"
    READING = "reading"
    DECISION = "decision"


class Needs(StrEnum):
    """What a check needs beyond the callback URL."""

    NOTHING = "callback URL"
    STATE = "state read API"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a requirement comes from: the kind, the quote, and the file it is quoted from."""

    kind: SourceKind
    quote: str
    invariant: bool = False
    """A `reading` that states a protocol invariant (counts, order, the limit): may be a MUST."""

    @property
    def file(self) -> str:
        return {
            SourceKind.PAGE: PAGE_FILE,
            SourceKind.READING: READING_FILE,
            SourceKind.DECISION: DECISION_FILE,
        }[self.kind]

    @property
    def fragments(self) -> tuple[str, ...]:
        """The verbatim pieces of the quote (a quote may skip text with ` [...] `)."""
        return tuple(part.strip() for part in self.quote.split(QUOTE_GAP))

    def describe(self) -> str:
        """One line for reports: `page (generic-smtp-callbacks.txt): "..."`."""
        kind = f"{self.kind.value}, invariant" if self.invariant else self.kind.value
        return f'{kind} ({self.file}): "{self.quote}"'


def page(quote: str) -> Source:
    return Source(SourceKind.PAGE, quote)


def reading(quote: str, *, invariant: bool = False) -> Source:
    return Source(SourceKind.READING, quote, invariant)


def decision(quote: str) -> Source:
    return Source(SourceKind.DECISION, quote)


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    level: Level
    title: str
    source: Source
    needs: Needs = Needs.NOTHING
    property_based: bool = False

    @property
    def quote(self) -> str:
        return self.source.quote

    @property
    def section(self) -> str:
        return self.id.removeprefix("CB-").split(".")[0]

    @property
    def label(self) -> str:
        """The test id: `CB-4.2 partial failure lists failed events in order`."""
        return f"{self.id} {self.title}"

    def level_for(self, strict: bool = False) -> Level:
        """The level a run applies: `strict` makes every reading a MUST."""
        if strict and self.source.kind is SourceKind.READING:
            return Level.MUST
        return self.level

    def grade(self, met: bool, strict: bool = False) -> Grade:
        """PASS when met; otherwise FAIL, NON-STRICT or INFORMATIONAL by the applied level."""
        if met:
            return Grade.PASS
        return {
            Level.MUST: Grade.FAIL,
            Level.SHOULD: Grade.NON_STRICT,
            Level.INFORMATIONAL: Grade.INFORMATIONAL,
        }[self.level_for(strict)]

    def listing(self, strict: bool = False) -> str:
        """One line of the requirement list: id, level, source kind, title, what it needs."""
        needs = f"  (needs {self.needs.value})" if self.needs is Needs.STATE else ""
        level = self.level_for(strict).value
        return f"{self.id:8} {level:13} {self.source.kind.value:8} {self.title}{needs}"


def allowed(level: Level, source: Source) -> bool:
    """The rule between source and level: only the page or an invariant may make a MUST."""
    if source.kind is SourceKind.DECISION:
        return level is Level.INFORMATIONAL
    if source.kind is SourceKind.READING and not source.invariant:
        return level is not Level.MUST
    return True


def _r(
    id: str,
    level: Level,
    title: str,
    source: Source,
    needs: Needs = Needs.NOTHING,
    property_based: bool = False,
) -> Requirement:
    if not allowed(level, source):
        raise ValueError(f"{id}: a {source.kind.value} requirement cannot be {level.value}")
    return Requirement(id, level, title, source, needs, property_based)


MUST, SHOULD, INFO, STATE = Level.MUST, Level.SHOULD, Level.INFORMATIONAL, Needs.STATE

_MANDATORY = (
    "This occurs when any mandatory keys are missing from the payload or when the payload format "
    "is incorrect."
)

CATALOGUE: tuple[Requirement, ...] = (
    # Section 3: the callback.
    _r(
        "CB-3.1",
        MUST,
        "version must be v2",
        page(
            "This must be set to v2 to track the delivery-related information such as success, "
            "failures, unsubscribes, and spam reports. [...] Bad request. Some mandatory "
            "parameters were missing. | " + _MANDATORY
        ),
    ),
    _r(
        "CB-3.2",
        MUST,
        "events must be an object holding a failed list",
        page("event | Denotes the event name. | Required | failed [...] " + _MANDATORY),
    ),
    _r(
        "CB-3.3",
        MUST,
        "keys the spec does not define are ignored",
        page(
            "If the payload includes additional key-value pairs apart from the ones that are "
            "defined in the acceptable sample payload for each event, CleverTap does not throw "
            "any errors, but simply disregards those."
        ),
    ),
    _r(
        "CB-3.4",
        MUST,
        "every defined type, and the bounce alias, is processed",
        page(
            "The type parameter in this event specifies the reason for the failure, such as hard "
            "bounce, soft bounce, spam, or unsubscribed. [...] Channel Unsubscribed: This event "
            "is raised if the callback event field type has values such asunsubscribed ,spam , "
            "orbounce ."
        ),
    ),
    _r(
        "CB-3.5",
        MUST,
        "description is optional free text",
        page(
            "An optional field to add more descriptive information regarding the callback event "
            "for analysis"
        ),
    ),
    _r(
        "CB-3.6",
        SHOULD,
        "success deliveries are accepted and counted, toward the limit too",
        reading(
            'An optional `events.success` list of `{"type": "delivered", ...}` (seen in a later '
            "revision of the page) is accepted and counted as deliveries in campaign reports. "
            "[...] At most 1000 events per call, all groups together."
        ),
    ),
    _r(
        "CB-3.7",
        MUST,
        "a batch of 1000 events is accepted",
        page("This occurs if more than 1000 events are sent in a single API call."),
    ),
    _r(
        "CB-3.8",
        MUST,
        "1001 or more events are refused whole",
        page("More than allowed events received. | This occurs if more than 1000 events are sent"),
    ),
    _r(
        "CB-3.9",
        SHOULD,
        "a refused oversized batch stores nothing",
        reading("1001 or more: 400, and nothing is processed."),
        STATE,
    ),
    # Section 4: responses.
    _r(
        "CB-4.1",
        MUST,
        "a fully processed batch gets the plain 200 reply",
        page(
            "The following is the sample response sent by CleverTap to the provider upon "
            'processing the callback payload successfully: { "TOTAL_EVENTS": 4, '
            '"PROCESSED_EVENTS": 4, "UNPROCESSED_EVENTS": [] }'
        ),
    ),
    _r(
        "CB-4.2",
        MUST,
        "partial failure lists failed events in order",
        page(
            "The following is the sample response sent by CleverTap to the providers upon partial "
            'processing of callback events: { "error": "2 event(s) failed to process", '
            '"TOTAL_EVENTS": 4, "PROCESSED_EVENTS": 2,'
        ),
    ),
    _r(
        "CB-4.3",
        MUST,
        "a missing meta is reported as invalid meta",
        page(
            '"description": "User hard bounce", "errorDescription": "invalid meta" [...] meta | '
            "CleverTap sends the key X-CleverTap_META in the SMTP payload with a specific value."
        ),
    ),
    _r(
        "CB-4.4",
        MUST,
        "a missing or unknown type is reported as unmappable",
        page(
            '"description": "User soft bounce", "errorDescription": "Could not map event to any '
            'bounce type"'
        ),
    ),
    _r(
        "CB-4.5",
        MUST,
        "a missing email fails that event only",
        page("Denotes the email address of the recipient. | Required"),
    ),
    _r(
        "CB-4.6",
        MUST,
        "an unreadable body is a 400 with the read error",
        page(
            'The following is the sample error response: { "error": "Exception occurred while '
            'reading input stream", "TOTAL_EVENTS": 0, "PROCESSED_EVENTS": 0, '
            '"UNPROCESSED_EVENTS": [] } [...] ' + _MANDATORY
        ),
    ),
    _r(
        "CB-4.7",
        MUST,
        "a top level that is not an object is a 400",
        page(_MANDATORY),
    ),
    _r(
        "CB-4.8",
        MUST,
        "no input ever gets a 5xx",
        page(
            "400 | Bad request. Some mandatory parameters were missing. | " + _MANDATORY + " [...] "
            "500 | Server error | CleverTap internal server error."
        ),
        property_based=True,
    ),
    _r(
        "CB-4.9",
        MUST,
        "the counts invariant holds for every 200",
        reading(
            "Invariant: `TOTAL_EVENTS == PROCESSED_EVENTS + len(UNPROCESSED_EVENTS)`",
            invariant=True,
        ),
        property_based=True,
    ),
    _r(
        "CB-4.10",
        MUST,
        "unprocessed events are exactly the failed ones, in request order",
        reading(
            "the unprocessed entries are exactly the failed events, in request order.",
            invariant=True,
        ),
        property_based=True,
    ),
    _r(
        "CB-4.11",
        MUST,
        "every reply is JSON of the documented shape",
        page(
            'The following is the sample error response: { "error": "Exception occurred while '
            'reading input stream", "TOTAL_EVENTS": 0, "PROCESSED_EVENTS": 0, '
            '"UNPROCESSED_EVENTS": [] }'
        ),
        property_based=True,
    ),
    _r(
        "CB-4.12",
        INFO,
        "a bad email is reported as invalid email",
        decision(
            "The `errorDescription` of a malformed email is `invalid email`, in the style of "
            "`invalid meta`"
        ),
    ),
    _r(
        "CB-4.13",
        SHOULD,
        "a top level that is not an object gets the mandatory-parameters message",
        page("Bad request. Some mandatory parameters were missing. | " + _MANDATORY),
    ),
    _r(
        "CB-4.14",
        INFO,
        "an event that is not an object is echoed under event",
        decision(
            'An event that is not a JSON object is echoed as `{"event": <it>, '
            '"errorDescription": "event is not a JSON object"}`'
        ),
    ),
    _r(
        "CB-4.15",
        INFO,
        "with several faults, the first of type, meta, email is reported",
        decision("An event with several faults reports the first of type, meta, email"),
    ),
    _r(
        "CB-4.16",
        INFO,
        "replies are labelled application/json",
        decision("Replies carry `Content-Type: application/json`"),
    ),
    _r(
        "CB-4.17",
        SHOULD,
        "an empty, non-string or malformed email fails that event only",
        reading("for a missing or malformed email a message of the same style."),
    ),
    _r(
        "CB-4.18",
        SHOULD,
        "an empty or non-string meta is reported as invalid meta",
        reading("errorDescription `invalid meta` (meta missing, empty or malformed)"),
    ),
    _r(
        "CB-4.19",
        INFO,
        "a meta off section 2's layout is reported as invalid meta",
        reading(
            "Meta layout (inferred from the vendor's samples, not documented by it): "
            "pipe-separated, with a trailing pipe, 7 fields then an empty one [...] 4 send date "
            "YYYYMMDD (UTC date of field 3)"
        ),
    ),
    _r(
        "CB-4.20",
        MUST,
        "numbers in an echoed event come back as the same double",
        reading(
            "the unprocessed entries are exactly the failed events, in request order. An echoed "
            "event is compared as a JSON value: numbers by value as IEEE doubles (what a stock "
            "JSON parser in any language keeps), key order and whitespace ignored.",
            invariant=True,
        ),
    ),
    # Section 5: what the receiver does, observed through the state read API.
    _r(
        "CB-5.1",
        MUST,
        "hard bounce raises both events and unsubscribes",
        page(
            "This event is raised if the callback event field type has values such ashard_bounce "
            "orsoft_bounce . [...] Hard bounces are included in the campaign reports; the users "
            "are marked as unsubscribed."
        ),
        STATE,
    ),
    _r(
        "CB-5.2",
        MUST,
        "soft bounce raises Notification Failed and never unsubscribes",
        page(
            "Soft bounces are included in the campaign reports; the users are not marked "
            "unsubscribed."
        ),
        STATE,
    ),
    _r(
        "CB-5.3",
        MUST,
        "spam, unsubscribed and bounce unsubscribe with Channel Unsubscribed",
        page(
            "When users unsubscribe, mark emails as spam, or experience a hard bounce (excluding "
            "soft bounces), their profiles are automatically unsubscribed from future "
            "communications, triggering the Channel Unsubscribed event."
        ),
        STATE,
    ),
    _r(
        "CB-5.4",
        MUST,
        "description becomes the reason of Channel Unsubscribed",
        page(
            "This is included in the reason event property of the Channel Unsubscribed event, "
            "with the description offering additional details for error analysis."
        ),
        STATE,
    ),
    _r(
        "CB-5.5",
        SHOULD,
        "an event delivered twice is applied once",
        reading(
            "The same event delivered twice (an ESP retry) must not raise its system events twice."
        ),
        STATE,
        property_based=True,
    ),
    _r(
        "CB-5.6",
        MUST,
        "subscription state follows the model over any sequence of callbacks",
        page(
            "this helps attribute a callback to a specific profile and campaign. [...] their "
            "profiles are automatically unsubscribed from future communications"
        ),
        STATE,
        property_based=True,
    ),
)

BY_ID: dict[str, Requirement] = {requirement.id: requirement for requirement in CATALOGUE}


class UnknownRequirement(SimulatorError, KeyError):
    """An id given on the command line or in a file is not in the catalogue."""

    def __str__(self) -> str:
        return (
            f"unknown requirement id {self.args[0]!r}; known ids: "
            + ", ".join(BY_ID)
            + " (see `bounceback conform --list`)"
        )
