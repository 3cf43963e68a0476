"""What the verdicts do to a message: the bulk-sender rules and the blocklist. Pure.

The rules are the ones Gmail and Yahoo publish for bulk senders (February 2024): mail must pass
SPF or DKIM (`unauthenticated`), its From domain must pass DMARC, i.e. publish a record and be
aligned with a passing SPF or DKIM domain (`dmarc-unaligned`), and bulk mail must offer RFC 8058
one-click unsubscribe, an https `List-Unsubscribe` URI with `List-Unsubscribe-Post:
List-Unsubscribe=One-Click` (`one-click-unsubscribe`). A listed client IP or domain
(`blocklisted`) is refused like a DNSBL hit. The scenario's `[enforcement]` table says what each
rule does when it fires:

- `refuse`: an SMTP refusal (550 5.7.26, 550 5.7.1 or 554 5.7.1); the sender sees it at once and
  no callback is posted, as with any SMTP-time refusal;
- `bounce`: accepted (250), then a hard_bounce callback per recipient naming the rule, as an ESP
  that accepts and then bounces reports it;
- `spam`: accepted, then a spam callback per recipient naming the rule (the spam folder);
- `off`: the rule is not applied.

When several rules fire, the strongest action wins (refuse, then bounce, then spam), and among
equals the rule listed first above. A refusal for the client IP or the envelope sender's domain
is given at MAIL FROM; everything else is known only with the message, at DATA.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from simulator.esp import replies
from simulator.esp.auth.message import ONE_CLICK, MessageFacts, domain_of
from simulator.esp.auth.results import PASS, Verdicts
from simulator.esp.auth.zone import Zone

__all__ = [
    "ACTIONS",
    "BLOCKLISTED",
    "BOUNCE",
    "OFF",
    "ONE_CLICK_UNSUBSCRIBE",
    "REFUSE",
    "RULES",
    "SPAM",
    "UNALIGNED",
    "UNAUTHENTICATED",
    "AuthSettings",
    "Blocklist",
    "Enforcement",
    "Judgement",
    "judge",
    "judge_mail",
    "one_click_problem",
]

REFUSE = "refuse"
BOUNCE = "bounce"
SPAM = "spam"
OFF = "off"
ACTIONS = (REFUSE, BOUNCE, SPAM, OFF)
UNAUTHENTICATED = "unauthenticated"
UNALIGNED = "dmarc-unaligned"
ONE_CLICK_UNSUBSCRIBE = "one-click-unsubscribe"
BLOCKLISTED = "blocklisted"
RULES = (BLOCKLISTED, UNAUTHENTICATED, UNALIGNED, ONE_CLICK_UNSUBSCRIBE)
"""In the order that breaks ties between equally strong actions."""
_STRENGTH = {REFUSE: 3, BOUNCE: 2, SPAM: 1, OFF: 0}
ENVELOPE = "envelope sender"
FROM = "From"
DKIM_SIGNER = "DKIM signing (d=)"

NetworkType = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The scenario's `[authentication]`: the zone, and who each connection pretends to be."""

    zone: Zone = field(default_factory=Zone)
    client_ip: str | None = None
    helo: str | None = None


@dataclass(frozen=True, slots=True)
class Blocklist:
    """Listed client networks and domains; a listed domain covers its subdomains."""

    ips: tuple[NetworkType, ...] = ()
    domains: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ips or self.domains)

    def ip_listing(self, ip: str) -> str | None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for network in self.ips:
            if address.version == network.version and address in network:
                return str(network) if network.num_addresses > 1 else str(network.network_address)
        return None

    def domain_listing(self, domain: str | None) -> str | None:
        if not domain:
            return None
        name = domain.rstrip(".").lower()
        for listed in self.domains:
            if name == listed or name.endswith("." + listed):
                return listed
        return None


@dataclass(frozen=True, slots=True)
class Enforcement:
    """The scenario's `[enforcement]`: what each rule does when it fires."""

    unauthenticated: str = OFF
    unaligned: str = OFF
    unsubscribe: str = OFF
    blocklisted: str = REFUSE


@dataclass(frozen=True, slots=True)
class Judgement:
    """A rule that fired and what it does: `reply` is the SMTP refusal (`code text`), and
    `description` what a bounce or spam callback says; both name the rule."""

    rule: str
    action: str
    reply: str
    description: str


def _judgement(rule: str, action: str, code: str, text: str) -> Judgement:
    reply = f"{code} {text}"
    description = replies.SPAM_FOLDER.format(reason=text) if action == SPAM else reply
    return Judgement(rule, action, reply, description)


def _listed_ip(blocklist: Blocklist, action: str, client_ip: str) -> Judgement | None:
    listing = blocklist.ip_listing(client_ip)
    if listing is None:
        return None
    text = replies.LISTED_IP.format(ip=client_ip, listing=listing, rule=BLOCKLISTED)
    return _judgement(BLOCKLISTED, action, replies.LISTED_CODE, text)


def _listed_domain(
    blocklist: Blocklist, action: str, where: str, domain: str | None
) -> Judgement | None:
    listing = blocklist.domain_listing(domain)
    if listing is None:
        return None
    text = replies.LISTED_DOMAIN.format(
        where=where, domain=domain, listing=listing, rule=BLOCKLISTED
    )
    return _judgement(BLOCKLISTED, action, replies.LISTED_CODE, text)


def judge_mail(
    blocklist: Blocklist, enforcement: Enforcement, client_ip: str, mail_from: str
) -> Judgement | None:
    """At MAIL FROM: a refusal for a listed client IP or envelope sender domain, or None."""
    if enforcement.blocklisted != REFUSE:
        return None
    return _listed_ip(blocklist, REFUSE, client_ip) or _listed_domain(
        blocklist, REFUSE, ENVELOPE, domain_of(mail_from)
    )


def one_click_problem(facts: MessageFacts) -> str | None:
    """Why a message does not offer RFC 8058 one-click unsubscribe, or None when it does."""
    if facts.list_unsubscribe is None:
        return replies.NO_LIST_UNSUBSCRIBE
    uris = [part.strip().strip("<>").strip() for part in facts.list_unsubscribe.split(",")]
    if not any(uri.lower().startswith("https://") for uri in uris):
        return replies.NO_HTTPS_UNSUBSCRIBE
    if (facts.list_unsubscribe_post or "").strip() != ONE_CLICK:
        return replies.NO_ONE_CLICK_POST
    return None


def _fired(
    verdicts: Verdicts | None,
    facts: MessageFacts,
    blocklist: Blocklist,
    enforcement: Enforcement,
    client_ip: str,
    mail_from: str,
) -> list[Judgement]:
    fired: list[Judgement] = []
    action = enforcement.blocklisted
    if action != OFF:
        signers = [s.domain for s in verdicts.signatures] if verdicts else []
        candidates = [
            _listed_ip(blocklist, action, client_ip),
            _listed_domain(blocklist, action, ENVELOPE, domain_of(mail_from)),
            _listed_domain(blocklist, action, FROM, facts.from_domain),
            *(_listed_domain(blocklist, action, DKIM_SIGNER, d) for d in signers),
        ]
        fired += [c for c in candidates if c is not None][:1]
    if verdicts is not None:
        action = enforcement.unauthenticated
        if action != OFF and not verdicts.authenticated:
            text = replies.UNAUTHENTICATED.format(rule=UNAUTHENTICATED)
            fired.append(_judgement(UNAUTHENTICATED, action, replies.UNAUTHENTICATED_CODE, text))
        action = enforcement.unaligned
        if action != OFF and verdicts.dmarc != PASS:
            text = replies.DMARC_NOT_PASSED.format(
                domain=facts.from_domain or "(no From domain)",
                result=verdicts.dmarc,
                reason=verdicts.dmarc_reason or verdicts.dmarc,
                rule=UNALIGNED,
            )
            fired.append(_judgement(UNALIGNED, action, replies.UNAUTHENTICATED_CODE, text))
    action = enforcement.unsubscribe
    if action != OFF and facts.bulk and (problem := one_click_problem(facts)) is not None:
        text = replies.NO_ONE_CLICK.format(problem=problem, rule=ONE_CLICK_UNSUBSCRIBE)
        fired.append(_judgement(ONE_CLICK_UNSUBSCRIBE, action, replies.ONE_CLICK_CODE, text))
    return fired


def judge(
    verdicts: Verdicts | None,
    facts: MessageFacts,
    blocklist: Blocklist,
    enforcement: Enforcement,
    client_ip: str,
    mail_from: str,
) -> Judgement | None:
    """At DATA: the rule that decides the message's fate, or None (the scenario decides).

    `verdicts` is None when the scenario has no `[authentication]`: only the blocklist applies.
    """
    fired = _fired(verdicts, facts, blocklist, enforcement, client_ip, mail_from)
    if not fired:
        return None
    return min(fired, key=lambda j: (-_STRENGTH[j.action], RULES.index(j.rule)))
