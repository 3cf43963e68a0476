"""Turning plan probes into messages to send: each gets its own meta, of the length the plan asks.

Pure. A long meta is made by lengthening the label (the one free-text field besides the address)
with a visible pattern, so a vendor's truncation or folding shows where it happened.
"""

from __future__ import annotations

from dataclasses import replace
from string import ascii_letters, digits

from reference_impl.certify.plan import Plan, ProbeSpec
from reference_impl.certify.recording import SentProbe
from reference_impl.meta import Meta, build_meta

_FILLER = digits + ascii_letters
MESSAGE_ID_SPAN = 10_000


class ProbeMetaError(ValueError):
    """A probe's `meta_length` is shorter than the shortest meta its address allows."""


def probe_meta(
    to: str, *, account_id: int, sent_at: int, label: str, message_id: int, length: int | None
) -> str:
    """The meta for one probe; `length`, when given, is met exactly by padding the label."""
    meta = Meta(to, account_id, sent_at, 0, label, message_id)
    natural = build_meta(meta)
    if length is None or length == len(natural):
        return natural
    pad = length - len(natural)
    if pad < 2:
        raise ProbeMetaError(
            f"meta_length {length} is too short for {to}: its meta is already {len(natural)} "
            f"characters; ask for at least {len(natural) + 2} or leave meta_length out"
        )
    filler = (_FILLER * (pad // len(_FILLER) + 1))[: pad - 1]
    return build_meta(replace(meta, label=f"{label}_{filler}"))


def message_id_base(started_at: float) -> int:
    """Message ids are negative like the vendor's samples and differ between runs."""
    return -((int(started_at) % 100_000) * MESSAGE_ID_SPAN)


def sent_probe(plan: Plan, spec: ProbeSpec, *, message_id: int, sent_at: float) -> SentProbe:
    """The record of one probe about to be sent at `sent_at`."""
    meta = probe_meta(
        spec.to,
        account_id=plan.account_id,
        sent_at=int(sent_at),
        label=plan.label,
        message_id=message_id,
        length=spec.meta_length,
    )
    return SentProbe(spec.id, spec.to, spec.expect, meta, sent_at, spec.respond)
