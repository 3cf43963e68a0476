"""DMARC (RFC 7489): the record, identifier alignment, and the verdict. Pure.

The record is looked up at `_dmarc.<From domain>`, then at `_dmarc.<organizational domain>`
(section 6.6.3). The organizational domain is the public suffix plus one label (section 3.2),
from the Public Suffix List that `publicsuffixlist` ships in its wheel, read offline: a name
outside the list (`mail.platform.example`) counts its last label as the suffix, the list's
default `*` rule, so `platform.example` is the organizational domain there.

Alignment (section 3.1): relaxed (`r`, the default) when both domains share the organizational
domain, strict (`s`) when they are equal. DMARC passes when a passing DKIM signature's d= or the
passing SPF domain is aligned with the From domain; fails when the domain publishes a record and
neither is; is none without a record, and permerror for a message without exactly one From
domain or a record without a usable `p=` (section 6.6.3 then applies no policy).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from simulator.esp.auth.results import FAIL, NONE, PASS, PERMERROR
from simulator.esp.auth.zone import Zone

__all__ = [
    "POLICIES",
    "DmarcRecord",
    "DmarcVerdict",
    "aligned",
    "evaluate_dmarc",
    "find_record",
    "organizational_domain",
    "parse_record",
    "suffix_list",
]

RELAXED = "r"
STRICT = "s"
POLICIES = ("none", "quarantine", "reject")
NO_POLICY = POLICIES[0]
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*")
# Section 6.4's ABNF: `"v" *WSP "=" *WSP %x44 %x4d %x41 %x52 %x43 %x31`, the tag name any case
# but the value exactly DMARC1, and first (6.6.3: other records are discarded).
VERSION = re.compile(r"\s*[vV][ \t]*=[ \t]*DMARC1[ \t]*(;|$)")
NO_RECORD = "no DMARC record at _dmarc.{domain}"
SEVERAL = "{count} DMARC records at _dmarc.{domain}"
BAD_POLICY = (
    "the DMARC record has no valid p=, or an sp= that is not valid (none, quarantine, reject)"
)
NOT_ALIGNED = "neither SPF domain {spf} nor DKIM domain {dkim} is aligned with {domain}"


@functools.cache
def suffix_list() -> PublicSuffixList:
    """Built once: reading the shipped list takes a few hundred milliseconds, so the handler
    asks for it when it starts rather than on the first message's DATA."""
    return PublicSuffixList()


@functools.lru_cache(maxsize=4096)
def organizational_domain(domain: str) -> str:
    """The registered domain: public suffix plus one label; a suffix itself stays itself.
    Cached: the same few domains are asked about for every message."""
    name = domain.rstrip(".").lower()
    return suffix_list().privatesuffix(name) or name


def aligned(identifier: str | None, from_domain: str, mode: str) -> bool:
    if not identifier:
        return False
    identifier = identifier.rstrip(".").lower()
    if mode == STRICT:
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    p: str
    sp: str
    adkim: str = RELAXED
    aspf: str = RELAXED


def _reports_to(rua: str | None) -> bool:
    """Whether `rua=` names at least one syntactically valid URI (section 6.2: a URI with a
    scheme, then an optional `!size`)."""
    for part in (rua or "").split(","):
        scheme, colon, rest = part.strip().split("!", 1)[0].partition(":")
        if colon and rest and _SCHEME.fullmatch(scheme):
            return True
    return False


def parse_record(text: str) -> DmarcRecord | None:
    """The policy of a `v=DMARC1` record. Its p= not valid, or an sp= that is not (section
    6.6.3): a record with a valid rua= is read as `p=none` (the SHOULD there), any other gives
    None: no DMARC policy applies, not even p= to a subdomain. Unknown tags and bad
    adkim=/aspf= values are ignored, falling back to the defaults (section 6.3)."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if equals:
            tags.setdefault(name.strip().lower(), value.strip().lower())
    p = tags.get("p")
    sp = tags.get("sp", p)
    if p not in POLICIES or sp not in POLICIES:
        # Section 6.6.3: with a usable reporting address, as if the record said only p=none.
        return DmarcRecord(p=NO_POLICY, sp=NO_POLICY) if _reports_to(tags.get("rua")) else None
    return DmarcRecord(
        p=p,
        sp=sp,
        adkim=STRICT if tags.get("adkim") == STRICT else RELAXED,
        aspf=STRICT if tags.get("aspf") == STRICT else RELAXED,
    )


def find_record(zone: Zone, from_domain: str) -> tuple[list[str], str]:
    """The `v=DMARC1` records at the From domain, else at its organizational domain; with where
    they were found."""
    org = organizational_domain(from_domain)
    for domain in dict.fromkeys((from_domain, org)):
        records = [r for r in zone.txt(f"_dmarc.{domain}") if VERSION.match(r)]
        if records:
            return records, domain
    return [], from_domain


@dataclass(frozen=True, slots=True)
class DmarcVerdict:
    result: str
    policy: str | None
    reason: str | None
    aligned_dkim: str | None = None


def evaluate_dmarc(
    zone: Zone,
    from_domain: str | None,
    from_problem: str | None,
    dkim_passes: Iterable[str],
    spf_result: str,
    spf_domain: str | None,
) -> DmarcVerdict:
    """`dkim_passes` are the d= of the signatures that passed; `aligned_dkim` is the first of
    them aligned with the From domain (the identity the header then reports)."""
    if from_domain is None:
        return DmarcVerdict(PERMERROR, None, from_problem)
    records, where = find_record(zone, from_domain)
    if not records:
        return DmarcVerdict(NONE, None, NO_RECORD.format(domain=organizational_domain(from_domain)))
    if len(records) > 1:
        return DmarcVerdict(PERMERROR, None, SEVERAL.format(count=len(records), domain=where))
    record = parse_record(records[0])
    if record is None:
        return DmarcVerdict(PERMERROR, None, BAD_POLICY)
    policy = record.p if where == from_domain else record.sp
    passes = list(dkim_passes)
    by_dkim = next((d for d in passes if aligned(d, from_domain, record.adkim)), None)
    by_spf = spf_result == PASS and aligned(spf_domain, from_domain, record.aspf)
    if by_dkim is not None or by_spf:
        return DmarcVerdict(PASS, policy, None, by_dkim)
    reason = NOT_ALIGNED.format(
        spf=spf_domain if spf_result == PASS else "(none passed)",
        dkim=", ".join(passes) or "(none passed)",
        domain=from_domain,
    )
    return DmarcVerdict(FAIL, policy, reason)
