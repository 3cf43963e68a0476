"""Turning plan probes into messages to send: each gets its own meta, of the length the plan asks.

Pure. A long meta is made by lengthening the label (the one free-text field besides the address)
with a visible pattern, so a vendor's truncation or folding shows where it happened.
"""

from __future__ import annotations

from string import ascii_letters, digits

from reference_impl.certify.plan import Plan, ProbeSpec
from reference_impl.certify.recording import SentProbe
from reference_impl.errors import PlatformError
from reference_impl.protocol.meta import Meta, build_meta

__all__ = [
    "ProbeMetaError",
    "message_id_base",
    "probe_meta",
    "sent_probe",
]

_FILLER = digits + ascii_letters
MESSAGE_ID_SPAN = 5_000
MESSAGE_ID_RUNS = 1_800
MESSAGE_ID_FLOOR = 10_000_000


class ProbeMetaError(PlatformError, ValueError):
    """A probe's `meta_length` is shorter than the shortest meta its address allows."""


def _meta(to: str, account_id: int, sent_at: int, label: str, message_id: int) -> Meta:
    return Meta(
        email=to,
        account_id=account_id,
        sent_at=sent_at,
        variant=0,
        label=label,
        message_id=message_id,
    )


def probe_meta(
    to: str, *, account_id: int, sent_at: int, label: str, message_id: int, length: int | None
) -> str:
    """The meta for one probe; `length`, when given, is met exactly by padding the label."""
    natural = build_meta(_meta(to, account_id, sent_at, label, message_id))
    if length is None or length == len(natural):
        return natural
    pad = length - len(natural)
    if pad < 2:
        raise ProbeMetaError(
            f"meta_length {length} is too short for {to}: its meta is already {len(natural)} "
            f"characters; ask for at least {len(natural) + 2} or leave meta_length out"
        )
    filler = (_FILLER * (pad // len(_FILLER) + 1))[: pad - 1]
    return build_meta(_meta(to, account_id, sent_at, f"{label}_{filler}", message_id))


def message_id_base(started_at: float) -> int:
    """Negative eight-digit ids like the vendor's samples (-17005907), differing between runs."""
    return -(MESSAGE_ID_FLOOR + (int(started_at) % MESSAGE_ID_RUNS) * MESSAGE_ID_SPAN)


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
    return SentProbe(
        spec.id, spec.to, spec.expect, meta, sent_at, spec.respond, relay_fold=spec.relay_fold
    )
