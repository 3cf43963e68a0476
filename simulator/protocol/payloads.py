"""Build v2 callback batches from spooled events, with the scenario's mutations. Pure.

Alongside each payload goes the list of events the receiver must refuse (PROTOCOL.md section 4)
and with what errorDescription, as the expectation model (`expect.py`) judges them: the mutations
are ours, the rules are the model's. Only an event we broke or that has no meta is judged: every
other one is processable by construction (tests/simulator/protocol/test_checks.py holds this to
the model), and judging costs time on the dispatcher thread.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from simulator.protocol import expect as x
from simulator.protocol.difference import OneOf

VERSION = x.VERSION
FAILED = "failed"
SUCCESS = "success"
UNKNOWN_TYPE = "mystery_bounce"
EXTRA_KEY = "x_esp_event_id"
EXTRA_TAGS_KEY = "x_esp_tags"
EXTRA_TAGS = ("bounceback", "simulated")

ANY_DESCRIPTION = ""
"""An expected failure whose wording the model leaves open: any non-empty errorDescription."""


# One callback event as the spool holds it, before mutation: the `events` columns id, group,
# type, email, meta, description, mutation and extra_keys, in that order. A plain tuple, so the
# dispatcher hands the spool's rows over as they come: building a frozen dataclass per event was
# about a fifth of its CPU per event, on the thread that shares the GIL with the SMTP loop.
SpooledEvent = tuple[int, str, str, str, str | None, str | None, str | None, int]


# Not frozen: one is made per refused event, and a frozen dataclass sets each field through
# object.__setattr__. Nothing changes one after construction.
@dataclass(slots=True)
class ExpectedFailure:
    """Index in request order (all groups, in order) and the errorDescription the model expects."""

    index: int
    description: str


@dataclass(frozen=True, slots=True)
class BuiltBatch:
    payload: dict[str, Any]
    event_ids: tuple[int, ...]
    expected_failures: tuple[ExpectedFailure, ...]


def malformed(email: str) -> str:
    """An address no receiver may accept: the `@` becomes ` at `."""
    return email.replace("@", " at ") if "@" in email else f"{email} at nowhere"


def event_body(event: SpooledEvent) -> dict[str, Any]:
    """The JSON event as sent, its mutation (if any) applied."""
    event_id, _, kind, email, meta, description, mutation, extra_keys = event
    body: dict[str, Any] = {"type": kind, "email": email}
    if meta is not None:
        body["meta"] = meta
    if description is not None:
        body["description"] = description
    if mutation == "drop_meta":
        body.pop("meta", None)
    elif mutation == "drop_type":
        del body["type"]
    elif mutation == "unknown_type":
        body["type"] = UNKNOWN_TYPE
    elif mutation == "malformed_email":
        body["email"] = malformed(email)
    if extra_keys:
        body[EXTRA_KEY] = f"evt-{event_id}"
        body[EXTRA_TAGS_KEY] = list(EXTRA_TAGS)
    return body


def expected_description(body: dict[str, Any], group: str) -> str | None:
    """The model's errorDescription if it says `body` must be refused in `group`, else None.

    Where the model accepts either of several wordings, the first is the one a known-good reply
    carries; where it accepts any wording, `ANY_DESCRIPTION`.
    """
    verdict = x.judge_event(body) if group == FAILED else x.judge_delivery(body)
    if verdict.outcome is not x.Outcome.UNPROCESSED:
        return None
    description = verdict.description
    if isinstance(description, OneOf):
        description = description.options[0]
    return description if isinstance(description, str) else ANY_DESCRIPTION


def build_batch(events: list[SpooledEvent], reorder: random.Random | None = None) -> BuiltBatch:
    """One v2 body: failures under `events.failed`, deliveries under `events.success`.

    With `reorder`, each group is shuffled by that seeded stream, as an ESP with parallel workers
    would send them.
    """
    groups: dict[str, list[SpooledEvent]] = {FAILED: [], SUCCESS: []}
    for event in events:
        groups[event[1]].append(event)  # its group
    if reorder is not None:
        for members in groups.values():
            reorder.shuffle(members)
    payload_events: dict[str, list[dict[str, Any]]] = {FAILED: []}
    if groups[SUCCESS]:
        payload_events[SUCCESS] = []
    expected: list[ExpectedFailure] = []
    order: list[int] = []
    for name in (FAILED, SUCCESS):
        for event in groups[name]:
            body = event_body(event)
            if event[6] is not None or event[4] is None:  # its mutation, its meta
                failure = expected_description(body, name)
                if failure is not None:
                    expected.append(ExpectedFailure(len(order), failure))
            payload_events[name].append(body)
            order.append(event[0])  # its id
    return BuiltBatch({"version": VERSION, "events": payload_events}, tuple(order), tuple(expected))


def request_order(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a payload in the order the receiver reads them."""
    events = payload.get("events", {})
    return [event for name in (FAILED, SUCCESS) for event in events.get(name, [])]
