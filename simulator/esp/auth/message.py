"""What the verdicts and the bulk-sender rules read from a message's header section.

Parsed with the standard library's compat32 header parser on a copy of the header block: only
names and addresses are read from it, never the meta, so the parser's unfolding and decoding
(harmless here) cannot touch what the ESP echoes.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from simulator.esp.headers import META_HEADER, header_block

__all__ = [
    "LIST_UNSUBSCRIBE",
    "LIST_UNSUBSCRIBE_POST",
    "ONE_CLICK",
    "MessageFacts",
    "domain_of",
    "read_facts",
]

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


def read_facts(raw: bytes) -> MessageFacts:
    headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(raw) + b"\r\n\r\n")
    froms = headers.get_all("From") or []
    from_domain: str | None = None
    problem: str | None = None
    if not froms:
        problem = NO_FROM
    elif len(froms) > 1:
        problem = SEVERAL_FROM.format(count=len(froms))
    else:
        domains = [domain_of(address) for _, address in getaddresses([str(froms[0])])]
        found = [domain for domain in domains if domain]
        if len(found) == 1:
            from_domain = found[0]
        else:
            problem = NO_FROM_DOMAIN.format(count=len(found))
    unsubscribe = headers.get(LIST_UNSUBSCRIBE)
    post = headers.get(LIST_UNSUBSCRIBE_POST)
    return MessageFacts(
        from_domain=from_domain,
        from_problem=problem,
        list_unsubscribe=None if unsubscribe is None else str(unsubscribe),
        list_unsubscribe_post=None if post is None else str(post),
        bulk=headers.get(META_HEADER.decode("ascii")) is not None,
    )
