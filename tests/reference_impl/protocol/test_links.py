"""Signed preference links (PROTOCOL.md section 5): only the meta a link was signed for verifies."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.protocol.links import (
    LinkKey,
    LinkKeyError,
    LinkVerdict,
    parse_link_key,
    sign_meta,
    verify_meta,
)

KEY = LinkKey("k1", b"0123456789abcdef0123")
OLD = LinkKey("k0", b"fedcba9876543210fedc")
META = "user1@example.com|1568798080|1730714617|20241104|0|wzrk_default|-17005907|"


def test_a_signed_meta_verifies_with_its_key():
    assert verify_meta(META, sign_meta(META, KEY), [KEY]) is LinkVerdict.VALID


def test_rotation_old_links_verify_while_their_key_is_kept():
    signature = sign_meta(META, OLD)
    assert verify_meta(META, signature, [KEY, OLD]) is LinkVerdict.VALID
    assert verify_meta(META, signature, [KEY]) is LinkVerdict.UNKNOWN_KEY


@pytest.mark.parametrize("signature", [None, ""])
def test_an_unsigned_link_is_refused(signature):
    assert verify_meta(META, signature, [KEY]) is LinkVerdict.UNSIGNED


@given(st.text(min_size=1, max_size=200).filter(lambda other: other != META))
def test_a_signature_never_verifies_another_meta(other):
    assert verify_meta(other, sign_meta(META, KEY), [KEY]) is LinkVerdict.BAD_SIGNATURE


@pytest.mark.parametrize("signature", ["k1.", "k1.AAAA", "k1." + "A" * 500, "k1.é€"])
def test_a_forged_signature_is_refused(signature):
    assert verify_meta(META, signature, [KEY]) is LinkVerdict.BAD_SIGNATURE


def test_the_secret_never_shows_in_a_repr():
    assert "0123456789" not in repr(KEY)


@pytest.mark.parametrize(
    ("text", "names"),
    [("nosep", "ID=SECRET"), ("k=short", "16 bytes"), ("bad id!=0123456789abcdef", "key id")],
)
def test_a_malformed_key_names_what_is_wrong(text, names):
    with pytest.raises(LinkKeyError, match=names):
        parse_link_key(text)


@given(st.text(max_size=80))
def test_the_signature_is_hmac_sha256_of_the_meta_text_base64url_unpadded(meta: str) -> None:
    """The key state is made once per key and copied per message (issue 13): the value must stay
    exactly the HMAC a receiver computes from scratch, message after message."""
    key = LinkKey("k1", b"s" * 20)
    mac = hmac.new(key.secret, meta.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    expected = "k1." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")
    assert sign_meta(meta, key) == expected
    assert sign_meta(meta, key) == expected
