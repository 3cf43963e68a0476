"""SPF (RFC 7208) verdicts with pyspf, its DNS answered by the scenario's zone.

pyspf does every DNS lookup through one method, `query.dns(name, qtype)` (its own cache and CNAME
handling sit inside it); `_ZoneQuery` overrides that method, so the whole RFC 7208 evaluation
(mechanisms, include:, redirect=, macros, the 10-lookup and 2-void-lookup limits) is pyspf's
and no lookup leaves the process. The zone holds TXT records only: `a`, `mx`, `ptr` and `exists`
find nothing (a void lookup), so a scenario authorises its client IP with `ip4:`/`ip6:`.
The override is per query object, not pyspf's module-level `DNSLookup`, so concurrent checks
with different zones cannot see each other's records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import spf

from simulator.esp.auth.message import domain_of
from simulator.esp.auth.results import NONE, PERMERROR
from simulator.esp.auth.zone import Zone

__all__ = ["HELO", "MAILFROM", "SpfVerdict", "check_spf"]

MAILFROM = "mailfrom"
HELO = "helo"
TXT_TYPES = ("TXT", "SPF")
NO_IDENTITY = "neither a MAIL FROM domain nor a HELO name to check"
SINGLE_LABEL = "{domain} is not a multi-label domain name (RFC 7208 section 4.3)"
VOID_LIMIT = "void lookup limit of {limit} exceeded"


@dataclass(frozen=True, slots=True)
class SpfVerdict:
    """The result for the checked identity: the MAIL FROM address, or the HELO name for `<>`."""

    result: str
    domain: str | None
    scope: str
    identity: str
    reason: str | None


class _ZoneQuery(spf.query):
    """pyspf's query with its one DNS method answered from a `Zone`."""

    def __init__(self, zone: Zone, **kwargs: Any) -> None:
        self._zone = zone
        super().__init__(**kwargs)

    def dns(
        self, name: Any, qtype: str, cnames: Any = None, ignore_void: bool = False
    ) -> list[Any]:
        records = self._zone.txt(str(name)) if qtype in TXT_TYPES else ()
        # pyspf wants each TXT record as its list of byte strings (the parts DNS splits it in).
        answer = [[record.encode("utf-8")] for record in records]
        if not answer and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(VOID_LIMIT.format(limit=spf.MAX_VOID_LOOKUPS))
        return answer


def check_spf(zone: Zone, client_ip: str, mail_from: str, helo: str) -> SpfVerdict:
    """RFC 7208 check_host() for MAIL FROM, or for the HELO name when the sender is null."""
    domain = domain_of(mail_from)
    if domain is not None:
        scope, identity = MAILFROM, mail_from
    else:
        scope, identity, domain = HELO, helo, (helo.rstrip(".").lower() or None)
    if domain is None:
        return SpfVerdict(NONE, None, scope, identity, NO_IDENTITY)
    if "." not in domain:
        # Section 4.3: check_host() returns none at once for a name that is not multi-label,
        # such as a bare `localhost` HELO; pyspf would look it up.
        return SpfVerdict(NONE, domain, scope, identity, SINGLE_LABEL.format(domain=domain))
    # A HELO name is passed as the domain it names: pyspf finds nothing for `mail.example.`
    # with the root's dot, which DNS names the same as `mail.example`.
    query = _ZoneQuery(
        zone,
        i=client_ip,
        s=mail_from if scope == MAILFROM else "",
        h=domain if scope == HELO else helo,
    )
    try:
        result, _code, explanation = query.check()
    except (spf.PermError, ValueError) as exc:
        return SpfVerdict(PERMERROR, domain, scope, identity, str(exc))
    reason = None if result in ("pass", NONE) else explanation
    return SpfVerdict(result, domain, scope, identity, reason)
