"""DKIM signing of every outgoing message (RFC 6376), so a relay that rewrites the meta shows.

A provider that names a selector, a signing domain and a private key has each message signed
where its bytes are final (`session.SmtpSession.send`): the `DKIM-Signature` header is put in
front of the message and nothing else is touched, so the `X-CleverTap_META` line still reaches
the ESP byte-exact. The meta and the `List-Unsubscribe` pair are among the signed headers, with
relaxed/relaxed canonicalisation: refolding or re-spacing a header does not break the signature
(relays do that), changing a byte of its value does. `generate_key` makes the RSA-2048 pair for
`bounceback provider dkim-keygen` and the DNS TXT record to publish. docs/sender.md, "DKIM".
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from dkim.canonicalization import CanonicalizationPolicy
from dkim.crypto import parse_pem_private_key

from reference_impl.errors import PlatformError
from reference_impl.protocol.meta import HEADER_NAME

if TYPE_CHECKING:
    from reference_impl.sender.provider import Provider

__all__ = [
    "CANONICALIZATION",
    "KEY_BITS",
    "MIN_KEY_BITS",
    "NO_KEY",
    "SIGNED_HEADERS",
    "DkimError",
    "generate_key",
    "key_problem",
    "name_problem",
    "public_der",
    "sign_message",
    "signature_header",
    "txt_name",
    "txt_value",
    "zone_entry",
    "zone_line",
]

KEY_BITS = 2048
# dkim.verify refuses keys under 1024 bits by default, as do most receivers.
MIN_KEY_BITS = 1024
CANONICALIZATION = (b"relaxed", b"relaxed")
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    HEADER_NAME,
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)
# A TXT record is a list of strings of at most 255 bytes each; the key is split to fit.
TXT_STRING_MAX = 255
NOT_PEM = "is not a PEM RSA private key ({reason})"
TOO_SMALL = "is a {bits}-bit RSA key; DKIM verifiers want at least {minimum} bits"
BAD_NAME = "{value!r} is not a DNS name (dot-separated labels of letters, digits and hyphens)"
EXISTS = "{path} already exists; refusing to overwrite a key (remove it or pick another --out)"
CANNOT_WRITE = "cannot write {path}: {reason}"
NO_KEY = "provider {nickname}: dkim_key_env names {env}, which is not set; export the PEM key in it"
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


class DkimError(PlatformError, ValueError):
    """A DKIM key cannot be made, read or used; the message says which and why."""


def name_problem(value: str) -> str | None:
    """Why `value` cannot be a selector or signing domain (both are DNS names), or None."""
    labels = value.rstrip(".").split(".")
    if not value or len(value) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return BAD_NAME.format(value=value)
    return None


def key_problem(pem: bytes) -> str | None:
    """Why `pem` cannot sign (not an RSA private key dkimpy can read, or too short), or None."""
    try:
        key = parse_pem_private_key(pem)
    except Exception as exc:  # dkimpy raises several unrelated types for a malformed key.
        return NOT_PEM.format(reason=f"{type(exc).__name__}: {exc}" if str(exc) else exc)
    bits = key["modulus"].bit_length()
    if bits < MIN_KEY_BITS:
        return TOO_SMALL.format(bits=bits, minimum=MIN_KEY_BITS)
    return None


def sign_message(provider: Provider, data: bytes) -> bytes:
    """`data` with a DKIM-Signature header in front, or unchanged when the provider signs not.

    The key is the one read from `dkim_key_file` when the file was loaded, or the PEM text in the
    variable named by `dkim_key_env`, read now, like a password.
    """
    if provider.dkim_selector is None or provider.dkim_domain is None:
        return data
    pem = provider.dkim_key()
    if pem is None:
        raise DkimError(NO_KEY.format(nickname=provider.nickname, env=provider.dkim_key_env))
    header = signature_header(
        data,
        provider.dkim_selector.encode("ascii"),
        provider.dkim_domain.encode("ascii"),
        _private_key(pem),
    )
    return header + data


@functools.lru_cache(maxsize=16)
def _private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """The key, parsed once per PEM text (a provider signs every message with the same one)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise DkimError(NOT_PEM.format(reason=exc)) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimError(NOT_PEM.format(reason=f"a {type(key).__name__}"))
    return key


_POLICY = CanonicalizationPolicy.from_c_value(b"/".join(CANONICALIZATION))
_INCLUDED = tuple(name.lower().encode("ascii") for name in SIGNED_HEADERS)
_HEADER = b"DKIM-Signature"
_CRLF = b"\r\n"
# dkimpy writes a placeholder b= first so that filling it in refolds nothing before it.
_PLACEHOLDER = b"0" * 60


def signature_header(data: bytes, selector: bytes, domain: bytes, key: rsa.RSAPrivateKey) -> bytes:
    """The DKIM-Signature line `dkim.sign` writes for `data` (rsa-sha256, relaxed/relaxed,
    `SIGNED_HEADERS`), with the RSA step done by `cryptography` (OpenSSL).

    dkimpy's RSA is modular arithmetic in Python on a key it parses again for every message, five
    times the cost of building the message; everything else is dkimpy's own: its message parser,
    canonicalisation, header hashing and folding, in the order its `DKIM.sign` uses them. RSA
    PKCS#1 v1.5 is deterministic, so the line is byte for byte dkimpy's (tests/.../test_dkim.py
    compares them and verifies with `dkim.verify`).
    """
    message = dkim.DKIM(data)
    body_hash = hashlib.sha256(_POLICY.canonicalize_body(message.body)).digest()
    fields = [
        (b"v", b"1"),
        (b"a", b"rsa-sha256"),
        (b"c", _POLICY.to_c_value()),
        (b"d", domain),
        (b"i", b"@" + domain),
        (b"q", b"dns/txt"),
        (b"s", selector),
        (b"t", str(int(time.time())).encode("ascii")),
        (b"h", b" : ".join(_INCLUDED)),
        (b"bh", base64.b64encode(body_hash)),
        (b"b", _PLACEHOLDER),
    ]
    unsigned = dkim.fold(_joined(fields), namelen=len(_HEADER), linesep=_CRLF)
    unsigned = dkim.RE_BTAG.sub(b"\\1", unsigned)
    hasher = hashlib.sha256()
    dkim.hash_headers(
        hasher,
        _POLICY,
        _POLICY.canonicalize_headers(message.headers),
        _INCLUDED,
        (_HEADER, b" " + unsigned),
        dict(fields),
    )
    signature = key.sign(hasher.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    fields[-1] = (b"b", base64.b64encode(signature))
    value = dkim.fold(_joined(fields) + _CRLF, namelen=len(_HEADER), linesep=_CRLF)
    return _HEADER + b": " + value


def _joined(fields: list[tuple[bytes, bytes]]) -> bytes:
    return b"; ".join(name + b"=" + value for name, value in fields)


def txt_name(selector: str, domain: str) -> str:
    """Where verifiers look for the key: `selector._domainkey.domain.` (RFC 6376 3.6.2.1)."""
    return f"{selector}._domainkey.{domain.rstrip('.')}."


def txt_value(public_der: bytes) -> str:
    """The record's text, `v=DKIM1; k=rsa; p=...`, as verifiers read it (strings joined)."""
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(public_der).decode("ascii")


def zone_line(selector: str, domain: str, public_der: bytes) -> str:
    """The record as a zone-file line; the value is split into strings of at most 255 bytes."""
    value = txt_value(public_der)
    strings = [value[i : i + TXT_STRING_MAX] for i in range(0, len(value), TXT_STRING_MAX)]
    quoted = " ".join(f'"{s}"' for s in strings)
    return f"{txt_name(selector, domain)} IN TXT {quoted}"


def zone_entry(selector: str, domain: str, public_der: bytes) -> str:
    """The record as a line of a bounceback zone, the `[authentication.dns]` table of a fake ESP
    scenario or a `--zone` file: TOML, the name without the root's dot, the value one string
    (a zone holds whole records, where DNS splits them at 255 bytes)."""
    name = txt_name(selector, domain).rstrip(".")
    return f'"{name}" = ["{txt_value(public_der)}"]'


def _public_der(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_der(pem: bytes) -> bytes:
    """The public half of the signing key `pem`, as its DNS record carries it: what verifiers
    need published, so a check can say which record is missing or does not match."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimError(NOT_PEM.format(reason=f"a {type(key).__name__}, not RSA"))
    return _public_der(key)


def generate_key(selector: str, domain: str, out: Path) -> str:
    """Write a new RSA-2048 private key to `out` (mode 0600, never over a file) and return the
    zone-file line to publish; the public half lives only in DNS."""
    for value in (selector, domain):
        if (problem := name_problem(value)) is not None:
            raise DkimError(problem)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise DkimError(EXISTS.format(path=out)) from exc
    except OSError as exc:
        raise DkimError(CANNOT_WRITE.format(path=out, reason=exc.strerror)) from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return zone_line(selector, domain, _public_der(key))
