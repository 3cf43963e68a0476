"""What an accepted event means for the platform (PROTOCOL.md section 5), with no I/O.

| type | system events | profile |
|---|---|---|
| hard_bounce | Notification Failed (Error = hard bounce) + Channel Unsubscribed | unsubscribed |
| soft_bounce | Notification Failed (Error = soft bounce) | stays subscribed |
| spam, unsubscribed, bounce | Channel Unsubscribed (Type = the type) | unsubscribed |
| delivered | none; counted in the campaign report | unchanged |

The profile is the meta's recipient, not the event's `email`: the meta is what the platform wrote,
while `email` is the ESP's echo (one vendor sample pairs `user5@` with a meta for `usert5@`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reference_impl import payload as p
from reference_impl.meta import Meta

NOTIFICATION_FAILED = "Notification Failed"
CHANNEL_UNSUBSCRIBED = "Channel Unsubscribed"

ERROR_NAMES = {p.HARD_BOUNCE: "hard bounce", p.SOFT_BOUNCE: "soft bounce"}
UNSUBSCRIBING = frozenset({p.HARD_BOUNCE, p.SPAM, p.UNSUBSCRIBED, p.BOUNCE})
SEND_FAILED = "send_failed"
REPORT_COUNTERS = (
    p.DELIVERED,
    p.HARD_BOUNCE,
    p.SOFT_BOUNCE,
    p.SPAM,
    p.UNSUBSCRIBED,
    p.BOUNCE,
    SEND_FAILED,
)


@dataclass(frozen=True, slots=True)
class SystemEvent:
    name: str
    profile: str
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything one first-seen event changes; a retried duplicate changes nothing."""

    system_events: tuple[SystemEvent, ...]
    unsubscribes: bool
    counter: str


def _campaign_properties(meta: Meta) -> dict[str, Any]:
    return {"Campaign id": meta.message_id, "Label": meta.label, "Variant": meta.variant}


def outcome_for(event: p.CallbackEvent) -> Outcome:
    meta = event.parsed_meta
    raised: list[SystemEvent] = []
    if event.type in ERROR_NAMES:
        properties = {
            "Error": ERROR_NAMES[event.type],
            **_campaign_properties(meta),
            "Description": event.description,
            "Email": event.email,
        }
        raised.append(SystemEvent(NOTIFICATION_FAILED, meta.email, properties))
    if event.type in UNSUBSCRIBING:
        properties = {
            "Type": event.type,
            "reason": event.description,
            **_campaign_properties(meta),
            "Channel": "Email",
            "Email": event.email,
        }
        raised.append(SystemEvent(CHANNEL_UNSUBSCRIBED, meta.email, properties))
    return Outcome(tuple(raised), event.type in UNSUBSCRIBING, event.type)


def send_failure_outcome(meta: Meta, error: str, detail: str) -> Outcome:
    """A message the sender could not hand to the ESP (PROTOCOL.md section 6)."""
    properties = {"Error": error, **_campaign_properties(meta), "Description": detail}
    return Outcome((SystemEvent(NOTIFICATION_FAILED, meta.email, properties),), False, SEND_FAILED)
