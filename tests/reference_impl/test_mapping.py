"""Event mapping to system events and profile state (PROTOCOL.md section 5)."""

from __future__ import annotations

import pytest

from reference_impl import mapping
from reference_impl.meta import Meta, build_meta, parse_meta
from reference_impl.payload import CallbackEvent

META = build_meta(Meta("user@example.com", 7, 1730714617, 3, "spring", -42))


def event(kind: str, description: str | None = "why") -> CallbackEvent:
    group = "success" if kind == "delivered" else "failed"
    return CallbackEvent(0, group, kind, "echo@example.com", META, parse_meta(META), description)


@pytest.mark.parametrize(
    ("kind", "names", "unsubscribes"),
    [
        ("hard_bounce", ["Notification Failed", "Channel Unsubscribed"], True),
        ("soft_bounce", ["Notification Failed"], False),
        ("spam", ["Channel Unsubscribed"], True),
        ("unsubscribed", ["Channel Unsubscribed"], True),
        ("bounce", ["Channel Unsubscribed"], True),
        ("delivered", [], False),
    ],
)
def test_each_type_raises_the_documented_system_events(
    kind: str, names: list[str], unsubscribes: bool
) -> None:
    outcome = mapping.outcome_for(event(kind))
    assert [raised.name for raised in outcome.system_events] == names
    assert outcome.unsubscribes is unsubscribes
    assert outcome.counter == kind


def test_notification_failed_carries_error_and_campaign_fields_from_the_meta() -> None:
    failed = mapping.outcome_for(event("soft_bounce", "452 4.2.2 Mailbox full")).system_events[0]
    assert failed.properties["Error"] == "soft bounce"
    assert failed.properties["Campaign id"] == -42
    assert failed.properties["Label"] == "spring"
    assert failed.properties["Variant"] == 3
    assert failed.properties["Description"] == "452 4.2.2 Mailbox full"


def test_channel_unsubscribed_takes_type_and_reason_from_the_event() -> None:
    raised = mapping.outcome_for(event("spam", "Marked as spam")).system_events[0]
    assert raised.properties["Type"] == "spam"
    assert raised.properties["reason"] == "Marked as spam"


def test_profile_is_the_meta_recipient_not_the_echoed_email() -> None:
    """The vendor sample pairs user5@ with a meta for usert5@: attribution follows the meta."""
    raised = mapping.outcome_for(event("hard_bounce")).system_events
    assert {system_event.profile for system_event in raised} == {"user@example.com"}


def test_send_failure_raises_notification_failed_with_the_sender_error() -> None:
    outcome = mapping.send_failure_outcome(parse_meta(META), "SMTP timeout", "DATA stalled")
    (raised,) = outcome.system_events
    assert raised.name == "Notification Failed"
    assert raised.properties["Error"] == "SMTP timeout"
    assert outcome.counter == mapping.SEND_FAILED
