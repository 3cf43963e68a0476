"""The requirement catalogue: every check the conformance suite makes, each tied to PROTOCOL.md.

An id names the section it comes from (`CB-4.2` is section 4), a level says how binding it is:
MUST is a sentence of PROTOCOL.md; SHOULD is the project's reading where PROTOCOL.md leaves the
detail open (the reference receiver does it this way, and an ESP may rely on it). Only a MUST
failure makes `bounceback conform` exit non-zero. `quote` is the sentence checked, word for word,
so a failure report can cite it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from simulator.errors import SimulatorError


class Level(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"


class Needs(StrEnum):
    """What a check needs beyond the callback URL."""

    NOTHING = "callback URL"
    STATE = "state read API"


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    level: Level
    title: str
    quote: str
    needs: Needs = Needs.NOTHING
    property_based: bool = False

    @property
    def section(self) -> str:
        return self.id.removeprefix("CB-").split(".")[0]

    @property
    def label(self) -> str:
        """The test id: `CB-4.2 partial failure lists failed events in order`."""
        return f"{self.id} {self.title}"


def _r(
    id: str,
    level: Level,
    title: str,
    quote: str,
    needs: Needs = Needs.NOTHING,
    property_based: bool = False,
) -> Requirement:
    return Requirement(id, level, title, quote, needs, property_based)


MUST, SHOULD, STATE = Level.MUST, Level.SHOULD, Needs.STATE

CATALOGUE: tuple[Requirement, ...] = (
    # Section 3: the callback.
    _r(
        "CB-3.1",
        MUST,
        "version must be v2",
        '`version` must be `"v2"` [...] A missing or wrong top-level key is a 400.',
    ),
    _r(
        "CB-3.2",
        MUST,
        "events must be an object holding a failed list",
        "`events` an object; `events.failed` a list. A missing or wrong top-level key is a 400.",
    ),
    _r(
        "CB-3.3",
        MUST,
        "keys the spec does not define are ignored",
        "Keys that the spec does not define are ignored, never an error.",
    ),
    _r(
        "CB-3.4",
        MUST,
        "every defined type, and the bounce alias, is processed",
        "`type` is one of `hard_bounce`, `soft_bounce`, `spam`, `unsubscribed`; `bounce` is "
        "accepted as a legacy alias that unsubscribes.",
    ),
    _r(
        "CB-3.5",
        MUST,
        "description is optional free text",
        "`description` is optional free text.",
    ),
    _r(
        "CB-3.6",
        MUST,
        "success deliveries are accepted and counted",
        'An optional `events.success` list of `{"type": "delivered", ...}` [...] is accepted and '
        "counted as deliveries in campaign reports.",
    ),
    _r(
        "CB-3.7",
        MUST,
        "a batch of 1000 events is accepted",
        "At most 1000 events per call, all groups together.",
    ),
    _r(
        "CB-3.8",
        MUST,
        "1001 or more events are refused whole",
        "At most 1000 events per call, all groups together. 1001 or more: 400, and nothing is "
        "processed.",
    ),
    _r(
        "CB-3.9",
        MUST,
        "a refused oversized batch stores nothing",
        "1001 or more: 400, and nothing is processed.",
        STATE,
    ),
    # Section 4: responses.
    _r(
        "CB-4.1",
        MUST,
        "a fully processed batch gets the plain 200 reply",
        '200, everything processed: `{"TOTAL_EVENTS": 4, "PROCESSED_EVENTS": 4, '
        '"UNPROCESSED_EVENTS": []}`',
    ),
    _r(
        "CB-4.2",
        MUST,
        "partial failure lists failed events in order",
        '200, some events failed: `{"error": "2 event(s) failed to process", "TOTAL_EVENTS": 4, '
        '"PROCESSED_EVENTS": 2, "UNPROCESSED_EVENTS": [<the event as sent, plus '
        '"errorDescription">]}`.',
    ),
    _r(
        "CB-4.3",
        MUST,
        "a missing, empty or malformed meta is reported as invalid meta",
        "errorDescription `invalid meta` (meta missing, empty or malformed)",
    ),
    _r(
        "CB-4.4",
        MUST,
        "a missing or unknown type is reported as unmappable",
        "`Could not map event to any bounce type` (type missing or unknown)",
    ),
    _r(
        "CB-4.5",
        MUST,
        "a missing or malformed email fails that event only",
        "for a missing or malformed email a message of the same style.",
    ),
    _r(
        "CB-4.6",
        MUST,
        "an unreadable body is a 400 with the read error",
        '400 for an unreadable body: `{"error": "Exception occurred while reading input stream", '
        '"TOTAL_EVENTS": 0, "PROCESSED_EVENTS": 0, "UNPROCESSED_EVENTS": []}`',
    ),
    _r(
        "CB-4.7",
        MUST,
        "a top level that is not an object is a 400",
        'A missing or wrong top-level key is a 400. [...] the same shape with `"Bad request. '
        'Some mandatory parameters were missing."`',
    ),
    _r(
        "CB-4.8",
        MUST,
        "no input ever gets a 5xx",
        "500 with the same shape for a server fault. Never a 5xx for bad input.",
        property_based=True,
    ),
    _r(
        "CB-4.9",
        MUST,
        "the counts invariant holds for every 200",
        "Invariant: `TOTAL_EVENTS == PROCESSED_EVENTS + len(UNPROCESSED_EVENTS)`",
        property_based=True,
    ),
    _r(
        "CB-4.10",
        MUST,
        "unprocessed events are exactly the failed ones, in request order",
        "the unprocessed entries are exactly the failed events, in request order.",
        property_based=True,
    ),
    _r(
        "CB-4.11",
        MUST,
        "every reply is JSON of the documented shape",
        "400 [...] the same shape [...] 500 with the same shape for a server fault.",
        property_based=True,
    ),
    _r(
        "CB-4.12",
        SHOULD,
        "a bad email is reported as invalid email",
        "for a missing or malformed email a message of the same style.",
    ),
    _r(
        "CB-4.13",
        SHOULD,
        "a top level that is not an object gets the mandatory-parameters message",
        'the same shape with `"Bad request. Some mandatory parameters were missing."`',
    ),
    _r(
        "CB-4.14",
        SHOULD,
        "an event that is not an object is echoed under event",
        '`UNPROCESSED_EVENTS`: [<the event as sent, plus "errorDescription">]',
    ),
    _r(
        "CB-4.15",
        SHOULD,
        "with several faults, the first of type, meta, email is reported",
        "errorDescription `invalid meta` [...], `Could not map event to any bounce type` [...]",
    ),
    _r(
        "CB-4.16",
        SHOULD,
        "replies are labelled application/json",
        "Responses [...] 400 [...] the same shape [...] 500 with the same shape",
    ),
    # Section 5: what the receiver does, observed through the state read API.
    _r(
        "CB-5.1",
        MUST,
        "hard bounce raises both events and unsubscribes",
        "hard_bounce | Notification Failed (Error = hard bounce) and Channel Unsubscribed "
        "(Type = hard_bounce) | unsubscribed",
        STATE,
    ),
    _r(
        "CB-5.2",
        MUST,
        "soft bounce raises Notification Failed and never unsubscribes",
        "soft_bounce | Notification Failed (Error = soft bounce) | stays subscribed",
        STATE,
    ),
    _r(
        "CB-5.3",
        MUST,
        "spam, unsubscribed and bounce unsubscribe with Channel Unsubscribed",
        "spam | Channel Unsubscribed (Type = spam) | unsubscribed [...] bounce | Channel "
        "Unsubscribed (Type = bounce) | unsubscribed",
        STATE,
    ),
    _r(
        "CB-5.4",
        MUST,
        "description becomes the reason of Channel Unsubscribed",
        "`description` becomes the `reason` property of Channel Unsubscribed.",
        STATE,
    ),
    _r(
        "CB-5.5",
        MUST,
        "an event delivered twice is applied once",
        "The same event delivered twice (an ESP retry) must not raise its system events twice.",
        STATE,
        property_based=True,
    ),
    _r(
        "CB-5.6",
        MUST,
        "subscription state follows the model over any sequence of callbacks",
        "| soft_bounce | Notification Failed (Error = soft bounce) | stays subscribed | [...] An "
        "unsubscribe applies to every profile with that address.",
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
