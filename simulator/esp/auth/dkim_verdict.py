"""DKIM (RFC 6376) verdicts with dkimpy, its key lookups answered by the scenario's zone.

Every DKIM-Signature is checked (up to `MAX_SIGNATURES`, so a message cannot make the SMTP loop
verify without bound). dkimpy answers True or False, or raises for a malformed signature, so the
RFC 8601 word is chosen here: no signature is none; a verified one pass; a key record that is
absent or unreadable, a malformed signature or a key too small is permerror (the signer's
setup, not the message, is wrong); a signature or body hash that does not match is fail.
"""

from __future__ import annotations

import logging

import dkim

from simulator.esp.auth.results import FAIL, NONE, PASS, PERMERROR, DkimResult
from simulator.esp.auth.zone import Zone
from simulator.esp.headers import header_block

__all__ = ["MAX_SIGNATURES", "verify_dkim"]

MAX_SIGNATURES = 5
NO_KEY = "no key record at {name}"
BAD_KEY = "key record at {name} is unusable"
MISMATCH = "signature does not verify"
BODY_CHANGED = "body hash mismatch: the body changed after signing"
# dkimpy logs each failure at ERROR on its own logger; the verdict carries the reason instead.
_QUIET = logging.getLogger("simulator.auth.dkimpy")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").lower()
    return None


def _verify_one(checker: dkim.DKIM, index: int, zone: Zone) -> DkimResult:
    try:
        if not checker.verify_headerprep(index):
            return DkimResult(NONE)
    except dkim.DKIMException as exc:
        return DkimResult(PERMERROR, reason=str(exc))
    domain, selector = _text(checker.domain), _text(checker.selector)
    name = f"{selector}._domainkey.{domain}"
    try:
        verified = checker.verify(index, dnsfunc=zone.dkim_key)
    except dkim.ValidationError:
        # The fields were validated above, so this is the body hash that does not match.
        return DkimResult(FAIL, domain, selector, BODY_CHANGED)
    except dkim.DKIMException as exc:
        return DkimResult(PERMERROR, domain, selector, str(exc))
    if verified:
        return DkimResult(PASS, domain, selector)
    record = zone.dkim_key(name.encode("ascii", "replace"))
    if record is None:
        return DkimResult(PERMERROR, domain, selector, NO_KEY.format(name=name))
    try:
        dkim.evaluate_pk(name, record)
    except dkim.DKIMException:
        return DkimResult(PERMERROR, domain, selector, BAD_KEY.format(name=name))
    return DkimResult(FAIL, domain, selector, MISMATCH)


def verify_dkim(raw: bytes, zone: Zone) -> tuple[DkimResult, ...]:
    """One result per DKIM-Signature, top first; empty when the message has none."""
    try:
        checker = dkim.DKIM(raw, logger=_QUIET)
    except dkim.DKIMException as exc:
        # A header section dkimpy cannot split: a signature in it cannot be checked.
        signed = b"dkim-signature:" in header_block(raw).lower()
        return (DkimResult(PERMERROR, reason=str(exc)),) if signed else ()
    count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
    # One parsed message serves every signature: `verify(index)` resets what it reads.
    return tuple(_verify_one(checker, index, zone) for index in range(min(count, MAX_SIGNATURES)))
