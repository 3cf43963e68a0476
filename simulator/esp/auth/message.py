"""What the verdicts and the bulk-sender rules read from a message's header section.

Read with the byte-level header reader the meta uses (`headers.extract_header`, RFC 5322
unfolding), not a full email parser: it runs for every message on the SMTP event loop, and the
stdlib parser cost more than the SPF and DMARC checks together. Only the From address goes
through the stdlib (`getaddresses`), for its display names, comments and quoting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses

from simulator.esp.headers import META_HEADER, RFC5322, extract_header, header_block

__all__ = [
    "LIST_UNSUBSCRIBE",
    "LIST_UNSUBSCRIBE_POST",
    "ONE_CLICK",
    "MessageFacts",
    "domain_of",
    "read_facts",
]

_FROM_LINE = re.compile(rb"^from:", re.IGNORECASE | re.MULTILINE)
LIST_UNSUBSCRIBE = "List-Unsubscribe"
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe-Post"
ONE_CLICK = "List-Unsubscribe=One-Click"
"""RFC 8058 section 3.1: the one value of List-Unsubscribe-Post that asks for a one-click POST."""
NO_FROM = "the message has no From header"
SEVERAL_FROM = "the message has {count} From headers"
NO_FROM_DOMAIN = "the From header names {count} addresses with a domain; DMARC needs exactly one"


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """The RFC 5322 From's domain (or why there is none), the unsubscribe pair, and whether the
    message is bulk: campaign mail, i.e. it carries `X-CleverTap_META`."""

    from_domain: str | None
    from_problem: str | None
    list_unsubscribe: str | None
    list_unsubscribe_post: str | None
    bulk: bool


def domain_of(address: str) -> str | None:
    """The domain of `local@domain`, lower case without a trailing dot; None for `<>`/no `@`."""
    local, at, domain = address.strip().strip("<>").rpartition("@")
    if not at or not local or not domain:
        return None
    return domain.rstrip(".").lower()


def _header(raw: bytes, name: str) -> str | None:
    value = extract_header(raw, name.encode("ascii"), unfolding=RFC5322)
    return None if value is None else value.decode("utf-8", "replace")


def read_facts(raw: bytes) -> MessageFacts:
    count = len(_FROM_LINE.findall(header_block(raw)))
    from_domain: str | None = None
    problem: str | None = None
    if count == 0:
        problem = NO_FROM
    elif count > 1:
        problem = SEVERAL_FROM.format(count=count)
    else:
        domains = [domain_of(address) for _, address in getaddresses([_header(raw, "From") or ""])]
        found = [domain for domain in domains if domain]
        if len(found) == 1:
            from_domain = found[0]
        else:
            problem = NO_FROM_DOMAIN.format(count=len(found))
    return MessageFacts(
        from_domain=from_domain,
        from_problem=problem,
        list_unsubscribe=_header(raw, LIST_UNSUBSCRIBE),
        list_unsubscribe_post=_header(raw, LIST_UNSUBSCRIBE_POST),
        bulk=extract_header(raw, META_HEADER) is not None,
    )
