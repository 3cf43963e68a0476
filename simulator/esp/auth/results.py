"""The verdicts of one message and their RFC 8601 `Authentication-Results` header.

The result words are RFC 8601's (section 2.7): the same seven for DKIM, SPF and DMARC here, so a
test or the spool listing compares one vocabulary. The header is written as one line (a value
of a few hundred characters at most, well under RFC 5322's 998) and put in front of the message,
where a receiving MTA adds it; nothing else of the message changes, so the meta and the body
reach the spool byte-exact and a DKIM signature (which never covers this header) still verifies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FAIL",
    "HEADER_NAME",
    "NEUTRAL",
    "NONE",
    "PASS",
    "PERMERROR",
    "RESULTS",
    "SOFTFAIL",
    "TEMPERROR",
    "DkimResult",
    "Verdicts",
    "header_value",
    "stamp",
]

PASS = "pass"
FAIL = "fail"
NONE = "none"
NEUTRAL = "neutral"
SOFTFAIL = "softfail"
TEMPERROR = "temperror"
PERMERROR = "permerror"
RESULTS = (PASS, FAIL, NONE, NEUTRAL, SOFTFAIL, TEMPERROR, PERMERROR)
HEADER_NAME = "Authentication-Results"
MAX_REASON = 120


@dataclass(frozen=True, slots=True)
class DkimResult:
    """One DKIM-Signature's verdict, with the domain (d=) and selector (s=) it names."""

    result: str
    domain: str | None = None
    selector: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Verdicts:
    """DKIM, SPF and DMARC for one message, and the identities each was about.

    `dkim` is pass when any signature passed (then `dkim_domain` is its d=, an aligned one first),
    else the first signature's result; `spf_domain` is the MAIL FROM domain, or the HELO name for a
    null sender (`spf_scope` says which); `from_domain` is the RFC 5322 From's domain.
    """

    dkim: str
    dkim_domain: str | None
    signatures: tuple[DkimResult, ...]
    spf: str
    spf_domain: str | None
    spf_scope: str
    spf_identity: str
    spf_reason: str | None
    dmarc: str
    from_domain: str | None
    dmarc_policy: str | None = None
    dmarc_reason: str | None = None

    @property
    def authenticated(self) -> bool:
        """What the bulk-sender rules call authenticated: a passing DKIM signature or SPF."""
        return PASS in (self.dkim, self.spf)

    def as_dict(self) -> dict[str, Any]:
        """The `auth` field of the spool's message record."""
        return {
            "dkim": self.dkim,
            "spf": self.spf,
            "dmarc": self.dmarc,
            "dkim_domain": self.dkim_domain,
            "spf_domain": self.spf_domain,
            "from_domain": self.from_domain,
        }


def _quoted(text: str) -> str:
    """An RFC 2045 quoted-string: quotes and backslashes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# RFC 8601 2.2: a property's pvalue is `[local-part] "@" domain-name`, a domain-name, or an RFC
# 2045 value (a token, else a quoted-string). An address literal HELO (`[192.0.2.1]`) or a
# quoted local part is none of the first two, and `[`, `]`, `"` and spaces are not in a token.
_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_ADDRESS_OR_DOMAIN = re.compile(
    rf"(?:(?:{_ATEXT}(?:\.{_ATEXT})*)?@)?[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*"
)
_TOKEN = re.compile(r'[^\x00-\x20\x7f-\U0010ffff()<>@,;:\\"/\[\]?=]+')


def _pvalue(value: str) -> str:
    """A property value as RFC 8601 allows it: as is when it may stand bare, else quoted."""
    if _ADDRESS_OR_DOMAIN.fullmatch(value) or _TOKEN.fullmatch(value):
        return value
    return _quoted(value)


def _reason(reason: str | None) -> str:
    """` reason="..."`, on one line and cut to `MAX_REASON` characters; nothing for a reason
    that is only whitespace (an empty `reason=""` says nothing)."""
    flat = " ".join((reason or "").split())[:MAX_REASON]
    return f" reason={_quoted(flat)}" if flat else ""


def header_value(authserv_id: str, verdicts: Verdicts) -> str:
    """`authserv-id; dkim=...; spf=...; dmarc=...` (RFC 8601 section 2.2), on one line."""
    parts = [authserv_id]
    for signature in verdicts.signatures or (DkimResult(NONE),):
        text = f"dkim={signature.result}{_reason(signature.reason)}"
        if signature.domain:
            text += f" header.d={_pvalue(signature.domain)}"
        if signature.selector:
            text += f" header.s={_pvalue(signature.selector)}"
        parts.append(text)
    spf = f"spf={verdicts.spf}{_reason(verdicts.spf_reason)}"
    if verdicts.spf_identity:
        spf += f" smtp.{verdicts.spf_scope}={_pvalue(verdicts.spf_identity)}"
    parts.append(spf)
    dmarc = f"dmarc={verdicts.dmarc}{_reason(verdicts.dmarc_reason)}"
    if verdicts.dmarc_policy:
        dmarc += f" (p={verdicts.dmarc_policy})"
    if verdicts.from_domain:
        dmarc += f" header.from={_pvalue(verdicts.from_domain)}"
    parts.append(dmarc)
    return "; ".join(parts)


def stamp(raw: bytes, value: str) -> bytes:
    """`raw` with `Authentication-Results: value` in front, in the message's own line ending."""
    first = raw.find(b"\n")
    newline = b"\r\n" if first < 0 or raw[first - 1 : first] == b"\r" else b"\n"
    line = f"{HEADER_NAME}: {value}".encode("utf-8", "replace")
    return line + newline + raw
