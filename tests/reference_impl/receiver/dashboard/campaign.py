"""A small campaign's history in a receiver's store, for the dashboard's browser test and its
screenshots: messages sent, then callbacks of every outcome spread over half an hour, and one
event whose meta was never sent."""

from __future__ import annotations

import json

from reference_impl.protocol.meta import Meta, build_meta
from reference_impl.protocol.payload import read_batch
from reference_impl.receiver.store import RawCallback, SentMessage, Store

MESSAGE_ID = 7001
LABEL = "spring-sale"
SENT_AT = 1796600000
# 24 delivered, 3 hard and 5 soft bounces, 2 spam reports, 4 unsubscribes, mixed the way a real
# campaign's replies arrive.
OUTCOMES = [
    *("delivered", "delivered", "soft_bounce", "delivered", "hard_bounce", "delivered"),
    *("delivered", "spam", "delivered", "delivered", "soft_bounce", "delivered"),
    *("unsubscribed", "delivered", "delivered", "hard_bounce", "delivered", "soft_bounce"),
    *("delivered", "delivered", "unsubscribed", "delivered", "spam", "delivered"),
    *("soft_bounce", "delivered", "delivered", "unsubscribed", "delivered", "delivered"),
    *("hard_bounce", "delivered", "soft_bounce", "delivered", "unsubscribed", "delivered"),
    *("delivered", "delivered"),
]


def campaign_meta(n: int) -> str:
    return build_meta(Meta(f"reader{n}@example.com", 4242, SENT_AT, 1, LABEL, MESSAGE_ID))


def envelope(events: list[tuple[str, str]]) -> bytes:
    """A v2 body of (type, meta) events, each in the group its type belongs to."""
    failed = [_event(kind, meta) for kind, meta in events if kind != "delivered"]
    success = [_event(kind, meta) for kind, meta in events if kind == "delivered"]
    return json.dumps({"version": "v2", "events": {"failed": failed, "success": success}}).encode()


def _event(kind: str, meta: str) -> dict[str, str]:
    email = meta.split("|", 1)[0]
    return {"type": kind, "email": email, "meta": meta, "description": f"{kind} reported"}


def record_history(store: Store, now: float) -> None:
    """Send the campaign, then log its callbacks in batches over the half hour before `now`."""
    store.record_sent(
        SentMessage(f"reader{n}@example.com", campaign_meta(n), MESSAGE_ID, LABEL, 1, SENT_AT)
        for n in range(len(OUTCOMES) + 6)
    )
    batches = [list(enumerate(OUTCOMES))[i : i + 3] for i in range(0, len(OUTCOMES), 3)]
    for number, batch in enumerate(batches):
        body = envelope([(kind, campaign_meta(n)) for n, kind in batch])
        at = now - 1800 + number * 1800 / len(batches) + (number % 3) * 40
        raw = RawCallback(body, "203.0.113.9", "application/json", at)
        store.record_callback(raw, read_batch(body))


def unattributed_body() -> bytes:
    """A spam report for a meta the sender never recorded as sent, plus one malformed event."""
    stray = build_meta(Meta("stranger@example.com", 4242, SENT_AT, 1, LABEL, MESSAGE_ID))
    body = json.loads(envelope([("spam", stray)]))
    body["events"]["failed"].append({"type": "spam", "email": "x@example.com", "meta": "bad"})
    return json.dumps(body).encode()
