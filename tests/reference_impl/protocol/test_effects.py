"""Event mapping to system events and profile state (PROTOCOL.md section 5)."""

from __future__ import annotations

import pytest

from reference_impl.protocol import effects


def cause(kind: str, description: str | None = "why", error: str | None = None) -> effects.Cause:
    return effects.Cause(kind, description, "echo@example.com", -42, "spring", 3, error)


@pytest.mark.parametrize(
    ("kind", "names", "unsubscribes"),
    [
        ("hard_bounce", ("Notification Failed", "Channel Unsubscribed"), True),
        ("soft_bounce", ("Notification Failed",), False),
        ("spam", ("Channel Unsubscribed",), True),
        ("unsubscribed", ("Channel Unsubscribed",), True),
        ("bounce", ("Channel Unsubscribed",), True),
        ("delivered", (), False),
    ],
)
def test_each_type_raises_the_documented_system_events(
    kind: str, names: tuple[str, ...], unsubscribes: bool
) -> None:
    assert effects.RAISES[kind] == names
    assert (kind in effects.UNSUBSCRIBING) is unsubscribes
    assert kind in effects.REPORT_COUNTERS


def test_notification_failed_carries_error_and_campaign_fields_from_the_meta() -> None:
    properties = effects.properties(
        effects.NOTIFICATION_FAILED, cause("soft_bounce", "452 4.2.2 Mailbox full")
    )
    assert properties["Error"] == "soft bounce"
    assert properties["Campaign id"] == -42
    assert properties["Label"] == "spring"
    assert properties["Variant"] == 3
    assert properties["Description"] == "452 4.2.2 Mailbox full"
    assert properties["Email"] == "echo@example.com"


def test_channel_unsubscribed_takes_type_and_reason_from_the_event() -> None:
    properties = effects.properties(effects.CHANNEL_UNSUBSCRIBED, cause("spam", "Marked as spam"))
    assert properties["Type"] == "spam"
    assert properties["reason"] == "Marked as spam"


def test_send_failure_raises_notification_failed_with_the_sender_error() -> None:
    properties = effects.properties(
        effects.NOTIFICATION_FAILED, cause(effects.SEND_FAILED, "DATA stalled", "SMTP timeout")
    )
    assert properties["Error"] == "SMTP timeout"
    assert properties["Description"] == "DATA stalled"
    assert effects.SEND_FAILED in effects.REPORT_COUNTERS
