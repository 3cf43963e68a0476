"""One message's DKIM, SPF and DMARC verdicts: the three checks put together. Pure.

Reads `raw` and never changes it: the caller keeps the bytes it was given, and `results.stamp`
only puts a header in front.
"""

from __future__ import annotations

from simulator.esp.auth.dkim_verdict import verify_dkim
from simulator.esp.auth.dmarc import evaluate_dmarc
from simulator.esp.auth.message import MessageFacts, read_facts
from simulator.esp.auth.results import NONE, PASS, Verdicts
from simulator.esp.auth.spf_verdict import check_spf
from simulator.esp.auth.zone import Zone

__all__ = ["authenticate"]


def authenticate(
    raw: bytes,
    zone: Zone,
    client_ip: str,
    mail_from: str,
    helo: str,
    facts: MessageFacts | None = None,
) -> Verdicts:
    """The verdicts for a message received from `client_ip` (which said HELO `helo`) with
    envelope sender `mail_from` (empty for `<>`)."""
    facts = facts or read_facts(raw)
    signatures = verify_dkim(raw, zone)
    spf = check_spf(zone, client_ip, mail_from, helo)
    passes = [s.domain for s in signatures if s.result == PASS and s.domain]
    dmarc = evaluate_dmarc(
        zone, facts.from_domain, facts.from_problem, passes, spf.result, spf.domain
    )
    if passes:
        dkim, dkim_domain = PASS, dmarc.aligned_dkim or passes[0]
    elif signatures:
        dkim, dkim_domain = signatures[0].result, signatures[0].domain
    else:
        dkim, dkim_domain = NONE, None
    return Verdicts(
        dkim=dkim,
        dkim_domain=dkim_domain,
        signatures=signatures,
        spf=spf.result,
        spf_domain=spf.domain,
        spf_scope=spf.scope,
        spf_identity=spf.identity,
        spf_reason=spf.reason,
        dmarc=dmarc.result,
        from_domain=facts.from_domain,
        dmarc_policy=dmarc.policy,
        dmarc_reason=dmarc.reason,
    )
