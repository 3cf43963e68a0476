"""Is this string an address the sender can put in RCPT TO and in a meta? Pure.

Deliberately practical, not the full RFC 5322 grammar: a dot-atom or quoted local part of at most
64 octets, a domain of LDH labels or an address literal, 254 octets in all (RFC 5321 4.5.3.1).
ASCII only: the meta must be visible ASCII (PROTOCOL.md section 2), so an SMTPUTF8 address could
not be attributed and is refused as an invalid email ID before anything is sent.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_ADDRESS",
    "MAX_LOCAL",
    "address_problem",
    "is_plain",
]


MAX_ADDRESS = 254
MAX_LOCAL = 64
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATOM}(\.{_ATOM})*")
_QUOTED = re.compile(r'"([\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"')
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_LITERAL = re.compile(r"\[[\x21-\x5a\x5e-\x7e]+\]")


def address_problem(address: str) -> str | None:
    """None for a usable address, else a sentence saying what is wrong with it."""
    if not address:
        return "is empty"
    if not address.isascii():
        return f"{address!r} is not ASCII (internationalised addresses are not supported)"
    if len(address) > MAX_ADDRESS:
        return f"is {len(address)} characters long, more than {MAX_ADDRESS}"
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return f"{address!r} is not of the form local@domain"
    if len(local) > MAX_LOCAL:
        return f"local part is {len(local)} characters long, more than {MAX_LOCAL}"
    if not (_DOT_ATOM.fullmatch(local) or _QUOTED.fullmatch(local)):
        return f"{address!r} has an invalid local part"
    if not (_DOMAIN.fullmatch(domain) or _LITERAL.fullmatch(domain)):
        return f"{address!r} has an invalid domain"
    return None


def is_plain(address: str) -> bool:
    """A dot-atom at an LDH domain: an address smtplib and the email package write as given.

    The sender writes such an address straight into its commands and headers; any other usable
    address goes through the stdlib's own quoting.
    """
    local, at, domain = address.rpartition("@")
    return (
        bool(at)
        and _DOT_ATOM.fullmatch(local) is not None
        and _DOMAIN.fullmatch(domain) is not None
    )
