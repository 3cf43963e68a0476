"""The attribution check: did every callback come back for a message that was really sent? Pure.

It reads the raw callback bodies the receiver logged, not the receiver's parsed events, so a bug in
the receiver's own meta handling cannot hide here. A sent message with no callback event is lost;
an event whose meta was never sent, or whose `email` is not the meta's recipient, is misattributed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reference_impl.receiver.store import SentMessage

__all__ = [
    "Attribution",
    "Problem",
    "check_attribution",
]


LOST = "sent, but no callback event carries its meta"
UNKNOWN_META = "callback meta was never sent"
EMAIL_MISMATCH = "callback email {email!r} is not the recipient {recipient!r} of its meta"
UNPROCESSED = "the receiver did not process the event: {reason}"
UNREADABLE = "callback body is not a v2 JSON object"


@dataclass(frozen=True, slots=True)
class Problem:
    meta: str | None
    reason: str


@dataclass
class Attribution:
    sent: int = 0
    events: int = 0
    matched: int = 0
    duplicates: int = 0
    types: Counter[str] = field(default_factory=Counter)
    lost: list[Problem] = field(default_factory=list)
    misattributed: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.misattributed


def _events(body: dict[str, Any]) -> Iterable[dict[str, Any]]:
    groups = body.get("events")
    if not isinstance(groups, dict):
        return
    for group in ("failed", "success"):
        for event in groups.get(group) or ():
            if isinstance(event, dict):
                yield event


def check_attribution(
    sent: Iterable[SentMessage], callbacks: Iterable[dict[str, Any]]
) -> Attribution:
    """`callbacks` as the receiver's read API lists them (`body` text and `response` object)."""
    by_meta = {m.meta: m for m in sent}
    result = Attribution(sent=len(by_meta))
    seen: set[tuple[str, str]] = set()
    answered: set[str] = set()
    for callback in callbacks:
        try:
            body = json.loads(callback["body"])
        except (KeyError, TypeError, ValueError):
            result.misattributed.append(Problem(None, UNREADABLE))
            continue
        if not isinstance(body, dict):
            result.misattributed.append(Problem(None, UNREADABLE))
            continue
        response = callback.get("response") or {}
        for unprocessed in response.get("UNPROCESSED_EVENTS") or ():
            reason = UNPROCESSED.format(reason=unprocessed.get("errorDescription"))
            result.misattributed.append(Problem(unprocessed.get("meta"), reason))
        for event in _events(body):
            result.events += 1
            meta, kind = event.get("meta"), str(event.get("type"))
            key = (str(meta), kind)
            if key in seen:
                result.duplicates += 1
                continue
            seen.add(key)
            result.types[kind] += 1
            message = by_meta.get(meta) if isinstance(meta, str) else None
            if message is None:
                result.misattributed.append(Problem(meta, UNKNOWN_META))
                continue
            answered.add(message.meta)
            email = event.get("email")
            if not isinstance(email, str) or email.lower() != message.recipient.lower():
                reason = EMAIL_MISMATCH.format(email=email, recipient=message.recipient)
                result.misattributed.append(Problem(meta, reason))
                continue
            result.matched += 1
    result.lost = [Problem(meta, LOST) for meta in by_meta if meta not in answered]
    return result
