"""Build v2 callback batches from spooled events, with the scenario's mutations. Pure.

Alongside each payload goes the list of events the receiver should refuse (PROTOCOL.md section 4),
so the response check knows what to expect: the mutations are ours, so are the expectations.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

VERSION = "v2"
FAILED = "failed"
SUCCESS = "success"
UNKNOWN_TYPE = "mystery_bounce"
EXTRA_KEY = "x_esp_event_id"
EXTRA_TAGS_KEY = "x_esp_tags"
EXTRA_TAGS = ("bounceback", "simulated")

# The receiver's errorDescription for events we broke on purpose (PROTOCOL.md section 4). A
# malformed email has no fixed wording there, so only "some description" is expected for it.
INVALID_META = "invalid meta"
UNMAPPED_TYPE_PREFIX = "Could not map event to any"
ANY_DESCRIPTION = ""


@dataclass(frozen=True, slots=True)
class SpooledEvent:
    """One callback event as the spool holds it, before mutation."""

    id: int
    group: str
    type: str
    email: str
    meta: str | None
    description: str | None
    mutation: str | None = None
    extra_keys: bool = False


@dataclass(frozen=True, slots=True)
class ExpectedFailure:
    """Index in request order (all groups, in order) and the errorDescription prefix expected."""

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


def event_body(event: SpooledEvent) -> tuple[dict[str, Any], str | None]:
    """The JSON event and, if the receiver should refuse it, the errorDescription prefix."""
    body: dict[str, Any] = {"type": event.type, "email": event.email}
    if event.meta is not None:
        body["meta"] = event.meta
    if event.description is not None:
        body["description"] = event.description
    expected: str | None = INVALID_META if event.meta is None else None
    if event.mutation == "drop_meta":
        body.pop("meta", None)
        expected = INVALID_META
    elif event.mutation == "drop_type":
        del body["type"]
        expected = UNMAPPED_TYPE_PREFIX
    elif event.mutation == "unknown_type":
        body["type"] = UNKNOWN_TYPE
        expected = UNMAPPED_TYPE_PREFIX
    elif event.mutation == "malformed_email":
        body["email"] = malformed(event.email)
        expected = expected or ANY_DESCRIPTION
    if event.extra_keys:
        body[EXTRA_KEY] = f"evt-{event.id}"
        body[EXTRA_TAGS_KEY] = list(EXTRA_TAGS)
    return body, expected


def build_batch(events: list[SpooledEvent], reorder: random.Random | None = None) -> BuiltBatch:
    """One v2 body: failures under `events.failed`, deliveries under `events.success`.

    With `reorder`, each group is shuffled by that seeded stream, as an ESP with parallel workers
    would send them.
    """
    groups: dict[str, list[SpooledEvent]] = {FAILED: [], SUCCESS: []}
    for event in events:
        groups[event.group].append(event)
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
            body, failure = event_body(event)
            if failure is not None:
                expected.append(ExpectedFailure(len(order), failure))
            payload_events[name].append(body)
            order.append(event.id)
    return BuiltBatch({"version": VERSION, "events": payload_events}, tuple(order), tuple(expected))


def request_order(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a payload in the order the receiver reads them."""
    events = payload.get("events", {})
    return [event for name in (FAILED, SUCCESS) for event in events.get(name, [])]
