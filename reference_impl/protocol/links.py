"""Signed preference links: an HMAC of the meta, so a link unsubscribes only the meta it carries.

A preference link (`List-Unsubscribe`, the preference center) changes a profile without a login, so
anyone who can write a URL could otherwise unsubscribe any address for good (PROTOCOL.md section 5).
The sender signs the exact meta text it stamped on the message with a secret the receiver holds; the
receiver recomputes the signature and changes nothing unless it matches. The key id travels in the
link so the secret can rotate: the receiver keeps old keys for verification while new links are
signed with the newest.

Wire form of the `sig` query parameter: `<key id>.<signature>`, where the signature is the unpadded
URL-safe base64 of HMAC-SHA256(secret, meta as UTF-8). Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import functools
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from reference_impl.errors import PlatformError
from reference_impl.protocol.limits import MAX_SIGNATURE_LENGTH

__all__ = [
    "SIGNATURE_PARAM",
    "LinkKey",
    "LinkKeyError",
    "LinkVerdict",
    "parse_link_key",
    "sign_meta",
    "verify_meta",
]

SIGNATURE_PARAM = "sig"
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
MIN_SECRET_BYTES = 16


class LinkKeyError(PlatformError, ValueError):
    """A link key is malformed; the message says which part and what it must be."""


@dataclass(frozen=True, slots=True)
class LinkKey:
    """One signing key: a short public id and a secret of at least 16 bytes."""

    key_id: str
    secret: bytes

    def __post_init__(self) -> None:
        if not _KEY_ID.fullmatch(self.key_id):
            raise LinkKeyError(
                f"link key id {self.key_id!r}: use 1 to 32 letters, digits, '-' or '_'"
            )
        if len(self.secret) < MIN_SECRET_BYTES:
            raise LinkKeyError(
                f"link key {self.key_id!r}: the secret must be at least {MIN_SECRET_BYTES} bytes"
            )

    def __repr__(self) -> str:  # never print the secret
        return f"LinkKey(key_id={self.key_id!r}, secret=<{len(self.secret)} bytes>)"


class LinkVerdict(Enum):
    """Why a link was accepted or refused; only VALID may change a profile."""

    VALID = "valid"
    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown key"
    BAD_SIGNATURE = "bad signature"


def parse_link_key(text: str) -> LinkKey:
    """Read `ID=SECRET` (as given on a command line or in an environment variable)."""
    key_id, sep, secret = text.partition("=")
    if not sep or not secret:
        raise LinkKeyError("a link key is written ID=SECRET, for example 2026a=<32 random chars>")
    return LinkKey(key_id.strip(), secret.encode("utf-8"))


@functools.lru_cache(maxsize=64)
def _keyed(secret: bytes) -> hmac.HMAC:
    """The HMAC state after the key, made once per key: the sender signs every message, and
    copying this state costs less than half of keying a new one (`hmac.new` or `hmac.digest`)."""
    return hmac.new(secret, digestmod="sha256")


def _digest(meta: str, key: LinkKey) -> str:
    mac = _keyed(key.secret).copy()
    mac.update(meta.encode("utf-8", "surrogatepass"))
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def sign_meta(meta: str, key: LinkKey) -> str:
    """The `sig` value for a link carrying exactly this meta text."""
    return f"{key.key_id}.{_digest(meta, key)}"


def verify_meta(meta: str, signature: str | None, keys: Iterable[LinkKey]) -> LinkVerdict:
    """Check a link's `sig` against every key the receiver still accepts, in constant time."""
    if not signature:
        return LinkVerdict.UNSIGNED
    if len(signature) > MAX_SIGNATURE_LENGTH:
        return LinkVerdict.BAD_SIGNATURE
    key_id, _, digest = signature.partition(".")
    key = next((k for k in keys if k.key_id == key_id), None)
    if key is None:
        return LinkVerdict.UNKNOWN_KEY
    if hmac.compare_digest(_digest(meta, key).encode("ascii"), digest.encode("ascii", "replace")):
        return LinkVerdict.VALID
    return LinkVerdict.BAD_SIGNATURE
