"""What an accepted event means for the platform (PROTOCOL.md section 5), with no I/O.

| type | system events | profile |
|---|---|---|
| hard_bounce | Notification Failed (Error = hard bounce) + Channel Unsubscribed | unsubscribed |
| soft_bounce | Notification Failed (Error = soft bounce) | stays subscribed |
| spam, unsubscribed, bounce | Channel Unsubscribed (Type = the type) | unsubscribed |
| delivered | none; counted in the campaign report | unchanged |

The profile is the meta's recipient, not the event's `email`: the meta is what the platform wrote,
while `email` is the ESP's echo (one vendor sample pairs `user5@` with a meta for `usert5@`).
The store keeps first-seen events and derives system events and profiles from them with `RAISES`
and `UNSUBSCRIBING`, so this table is the only place the mapping is written down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reference_impl.protocol import payload as p

NOTIFICATION_FAILED = "Notification Failed"
CHANNEL_UNSUBSCRIBED = "Channel Unsubscribed"
SEND_FAILED = "send_failed"

RAISES: dict[str, tuple[str, ...]] = {
    p.HARD_BOUNCE: (NOTIFICATION_FAILED, CHANNEL_UNSUBSCRIBED),
    p.SOFT_BOUNCE: (NOTIFICATION_FAILED,),
    p.SPAM: (CHANNEL_UNSUBSCRIBED,),
    p.UNSUBSCRIBED: (CHANNEL_UNSUBSCRIBED,),
    p.BOUNCE: (CHANNEL_UNSUBSCRIBED,),
    p.DELIVERED: (),
}
UNSUBSCRIBING = frozenset(kind for kind, names in RAISES.items() if CHANNEL_UNSUBSCRIBED in names)
ERROR_NAMES = {p.HARD_BOUNCE: "hard bounce", p.SOFT_BOUNCE: "soft bounce"}
REPORT_COUNTERS = (*RAISES, SEND_FAILED)


@dataclass(frozen=True, slots=True)
class Cause:
    """What a system event is built from: the event (or send failure) and its meta's campaign."""

    kind: str
    description: str | None
    email: str
    message_id: int
    label: str
    variant: int
    error: str | None = None


def properties(name: str, cause: Cause) -> dict[str, Any]:
    """The properties of system event `name` raised by `cause`."""
    campaign = {"Campaign id": cause.message_id, "Label": cause.label, "Variant": cause.variant}
    kind, description, email = cause.kind, cause.description, cause.email
    if name == NOTIFICATION_FAILED:
        failure = cause.error or ERROR_NAMES[kind]
        return {"Error": failure, **campaign, "Description": description, "Email": email}
    return {"Type": kind, "reason": description, **campaign, "Channel": "Email", "Email": email}
