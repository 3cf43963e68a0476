"""Recordings built by hand: the probes a run sent, the callbacks a (mis)behaving vendor posted."""

from __future__ import annotations

import email.policy
import json
from dataclasses import replace
from email import message_from_bytes
from email.message import EmailMessage
from typing import Any

from reference_impl.certify.plan import RESPOND_500, RESPOND_SLOW
from reference_impl.certify.probes import probe_meta
from reference_impl.certify.recording import Callback, Recording, RunInfo, SentProbe

T0 = 1_730_714_617.0
DEADLINE = 60.0
JSON_HEADERS = (("Content-Type", "application/json"), ("User-Agent", "vendor-esp/1.0"))
DESCRIPTIONS = {
    "hard_bounce": "550 5.1.1 User unknown",
    "soft_bounce": "452 4.2.2 Mailbox full",
    "spam": "Marked as spam",
    "unsubscribed": "User unsubscribed",
}


def probe(
    index: int,
    probe_id: str,
    to: str,
    expect: str,
    *,
    length: int | None = None,
    respond: str | None = None,
) -> SentProbe:
    meta = probe_meta(
        to,
        account_id=1568798080,
        sent_at=int(T0),
        label="cert",
        message_id=-17005900 - index,
        length=length,
    )
    return SentProbe(probe_id, to, expect, meta, T0 + index * 0.01, respond)


def standard_probes() -> list[SentProbe]:
    """One of each outcome, long metas over 78 and over 998, and the two delivery probes."""
    return [
        probe(0, "hard", "bounce@sim.test", "hard_bounce"),
        probe(1, "soft", "ooto@sim.test", "soft_bounce"),
        probe(2, "spam", "complaint@sim.test", "spam"),
        probe(3, "unsub", "unsubscribe@sim.test", "unsubscribed"),
        probe(4, "ok", "success@sim.test", "delivered"),
        probe(5, "long-74", "bounce+l74@sim.test", "hard_bounce", length=74),
        probe(6, "long-200", "bounce+l200@sim.test", "hard_bounce", length=200),
        probe(7, "long-1200", "bounce+l1200@sim.test", "hard_bounce", length=1200),
        probe(8, "retry-500", "bounce+r500@sim.test", "hard_bounce", respond=RESPOND_500),
        probe(9, "retry-slow", "bounce+slow@sim.test", "hard_bounce", respond=RESPOND_SLOW),
    ]


def event(sent: SentProbe, kind: str | None = None, **overrides: Any) -> dict[str, Any]:
    kind = kind or sent.expect
    body = {"type": kind, "email": sent.to, "meta": sent.meta}
    if kind in DESCRIPTIONS:
        body["description"] = DESCRIPTIONS[kind]
    body.update(overrides)
    return body


def body(failed: list[dict[str, Any]], success: list[dict[str, Any]] | None = None) -> bytes:
    events: dict[str, Any] = {"failed": failed}
    if success is not None:
        events["success"] = success
    return json.dumps({"version": "v2", "events": events}).encode()


def call(
    seq: int,
    at: float,
    raw: bytes,
    *,
    status: int = 200,
    injected: str | None = None,
    headers: tuple[tuple[str, str], ...] = JSON_HEADERS,
) -> Callback:
    return Callback(
        seq,
        T0 + at,
        "POST",
        "/callback",
        headers,
        raw,
        status,
        '{"TOTAL_EVENTS": 0}',
        T0 + at,
        injected,
    )


def recording(probes: list[SentProbe], calls: list[Callback]) -> Recording:
    return Recording(RunInfo("test-plan", T0, T0 + DEADLINE), tuple(probes), tuple(calls))


def well_behaved(probes: list[SentProbe] | None = None) -> Recording:
    """A vendor that does everything right: the 500 and slow probes retried after 5 s."""
    probes = probes or standard_probes()
    by_id = {p.id: p for p in probes}
    plain = [event(p) for p in probes if p.expect != "delivered" and not p.respond]
    calls = [
        call(1, 2.0, body(plain, [event(by_id["ok"], "delivered")])),
        call(2, 2.5, body([event(by_id["retry-500"])]), status=500, injected=RESPOND_500),
        call(3, 2.6, body([event(by_id["retry-slow"])]), injected=RESPOND_SLOW),
        call(4, 7.5, body([event(by_id["retry-500"])])),
        call(5, 12.6, body([event(by_id["retry-slow"])])),
    ]
    return recording(probes, calls)


def replace_bodies(rec: Recording, transform: Any) -> Recording:
    """Apply `transform(document) -> document` to every callback body."""
    calls = tuple(
        replace(c, body=json.dumps(transform(json.loads(c.body))).encode()) for c in rec.callbacks
    )
    return replace(rec, callbacks=calls)


def python_folded(meta: str) -> str:
    """What an ESP reading the header with Python 3.11's email package hands back (gh-124452)."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["X-CleverTap_META"] = meta
    message.set_content("probe")
    parsed = message_from_bytes(message.as_bytes(), policy=email.policy.compat32)
    return "".join(str(parsed["X-CleverTap_META"]).splitlines())
