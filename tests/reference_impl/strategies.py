"""Hypothesis strategies for the receiver's own tests: valid events built with the codec."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from reference_impl.protocol.meta import Meta, build_meta

FAILED_TYPES = ["hard_bounce", "soft_bounce", "spam", "unsubscribed", "bounce"]

emails = st.builds(
    lambda local, domain: f"{local}@{domain}.example",
    st.from_regex(r"[a-z0-9._+-]{1,20}", fullmatch=True),
    st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
)


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    email = draw(emails)
    meta = Meta(
        email=email,
        account_id=draw(st.integers(0, 10**10)),
        sent_at=draw(st.integers(1_500_000_000, 2_000_000_000)),
        variant=draw(st.integers(0, 9)),
        label=draw(st.sampled_from(["wzrk_default", "spring", "a-b_c"])),
        message_id=draw(st.integers(-(10**9), 10**9)),
    )
    event: dict[str, Any] = {
        "type": draw(st.sampled_from(FAILED_TYPES)),
        "email": email,
        "meta": build_meta(meta),
    }
    description = draw(
        st.none() | st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=40)
    )
    if description is not None:
        event["description"] = description
    return event


BROKEN = {
    "type": lambda event: event.pop("type"),
    "unknown type": lambda event: event.update(type="bounced_hard"),
    "meta": lambda event: event.pop("meta"),
    "bad meta": lambda event: event.update(meta=event["meta"][:-1]),
    "email": lambda event: event.pop("email"),
    "bad email": lambda event: event.update(email="not-an-address"),
    "numeric email": lambda event: event.update(email=42),
    "nul description": lambda event: event.update(description="a\x00b"),
}


@st.composite
def mixed_events(draw: st.DrawFn) -> tuple[dict[str, Any] | Any, bool]:
    """An event and whether it is valid: valid, one of BROKEN applied, or not an object at all."""
    event = draw(valid_events())
    choice = draw(st.sampled_from([None, "not an object", *BROKEN]))
    if choice is None:
        return event, True
    if choice == "not an object":
        return draw(st.sampled_from([1, "x", None, [event]])), False
    BROKEN[choice](event)
    return event, False


def envelope(failed: list[Any]) -> bytes:
    return json.dumps({"version": "v2", "events": {"failed": failed}}).encode()
