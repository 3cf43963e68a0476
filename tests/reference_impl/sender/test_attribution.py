"""The demo's attribution check, on hand-made callback logs."""

from __future__ import annotations

import json
from typing import Any

from reference_impl.receiver.store import SentMessage
from reference_impl.sender.attribution import EMAIL_MISMATCH, LOST, UNKNOWN_META, check_attribution

SENT = [
    SentMessage("a@example.com", "a@example.com|1|2|19700101|0|l|-1|", -1, "l", 0, 2.0),
    SentMessage("b@example.com", "b@example.com|1|2|19700101|0|l|-2|", -2, "l", 0, 2.0),
]


def callback(*events: dict[str, Any], unprocessed: list[dict] | None = None) -> dict[str, Any]:
    body = {
        "version": "v2",
        "events": {
            "failed": [e for e in events if e["type"] != "delivered"],
            "success": [e for e in events if e["type"] == "delivered"],
        },
    }
    return {"body": json.dumps(body), "response": {"UNPROCESSED_EVENTS": unprocessed or []}}


def event(kind: str, message: SentMessage, email: str | None = None) -> dict[str, Any]:
    return {"type": kind, "email": email or message.recipient, "meta": message.meta}


def test_every_sent_message_matched_is_ok() -> None:
    result = check_attribution(
        SENT, [callback(event("delivered", SENT[0]), event("spam", SENT[1]))]
    )
    assert result.ok
    assert result.matched == 2
    assert dict(result.types) == {"delivered": 1, "spam": 1}


def test_a_sent_message_without_callback_is_lost() -> None:
    result = check_attribution(SENT, [callback(event("delivered", SENT[0]))])
    assert not result.ok
    assert [(p.meta, p.reason) for p in result.lost] == [(SENT[1].meta, LOST)]


def test_a_meta_never_sent_is_misattributed() -> None:
    stranger = SentMessage("c@example.com", "c@example.com|1|2|19700101|0|l|-3|", -3, "l", 0, 2)
    result = check_attribution(
        SENT, [callback(*(event("delivered", m) for m in [*SENT, stranger]))]
    )
    assert [(p.meta, p.reason) for p in result.misattributed] == [(stranger.meta, UNKNOWN_META)]


def test_an_event_email_other_than_the_meta_recipient_is_misattributed() -> None:
    result = check_attribution(
        SENT, [callback(event("delivered", SENT[0]), event("spam", SENT[1], "x@example.com"))]
    )
    assert result.lost == []
    assert result.misattributed[0].reason == EMAIL_MISMATCH.format(
        email="x@example.com", recipient="b@example.com"
    )


def test_a_retried_event_counts_once_and_an_unprocessed_one_is_reported() -> None:
    both = [event("delivered", SENT[0]), event("delivered", SENT[1])]
    rejected = {"type": "spam", "email": "a@example.com", "errorDescription": "invalid meta"}
    result = check_attribution(SENT, [callback(*both), callback(*both, unprocessed=[rejected])])
    assert result.duplicates == 2
    assert result.matched == 2
    assert "invalid meta" in result.misattributed[0].reason
