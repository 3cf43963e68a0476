"""A DKIM key pair for the verdict tests, made once: RSA-1024, the smallest dkimpy verifies."""

from __future__ import annotations

import base64

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SELECTOR = "sel1"
SIGNED = [b"from", b"to", b"subject", b"x-clevertap_meta"]


class Signer:
    """Signs like the platform's sender (relaxed/relaxed) and knows its key record."""

    def __init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        self.pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.record = "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode("ascii")

    def sign(self, raw: bytes, domain: str, selector: str = SELECTOR) -> bytes:
        signature = dkim.sign(
            raw,
            selector.encode(),
            domain.encode(),
            self.pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=SIGNED,
        )
        return signature + raw


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer()


def message(from_header: str = "News <news@example.com>", body: bytes = b"Hello.\r\n") -> bytes:
    return (
        f"From: {from_header}\r\nTo: reader@example.org\r\nSubject: hi\r\n"
        "X-CleverTap_META: reader@example.org|1|2|3|0|label|-1|\r\n\r\n"
    ).encode() + body
