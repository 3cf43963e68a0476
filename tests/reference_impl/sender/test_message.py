"""Building campaign messages: From, Reply-To, Message-ID, the meta unfolded, preference center."""

from __future__ import annotations

import email
from email import policy
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.protocol.links import LinkKey, LinkVerdict, verify_meta
from reference_impl.protocol.meta import HEADER_NAME, Meta, parse_meta
from reference_impl.sender.message import (
    LIST_UNSUBSCRIBE,
    LIST_UNSUBSCRIBE_POST,
    MAX_LABEL,
    ONE_CLICK,
    MessageError,
    _quote,
    build_message,
    build_test_email,
    to_bytes,
)
from reference_impl.sender.provider import Provider

PROVIDER = Provider(
    nickname="p",
    host="127.0.0.1",
    port=25,
    from_address="news@acme.example",
    from_name="Acme Nöwsletters",
    reply_address="support@acme.example",
)


def meta_for(recipient: str = "user1@example.com", label: str = "wzrk_default") -> Meta:
    return Meta(recipient, 1568798080, 1730714617, 2, label, -17005907)


def header_line(raw: bytes, name: str) -> bytes:
    lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    found = [line for line in lines if line.lower().startswith(name.lower().encode() + b":")]
    assert len(found) == 1, f"{name} appears {len(found)} times"
    return found[0]


def test_from_reply_to_and_message_id_come_from_the_provider() -> None:
    parsed = email.message_from_bytes(
        to_bytes(build_message(PROVIDER, meta_for())), policy=policy.default
    )
    assert parsed["From"].addresses[0].display_name == "Acme Nöwsletters"
    assert parsed["From"].addresses[0].addr_spec == "news@acme.example"
    assert parsed["Reply-To"] == "support@acme.example"
    assert parsed["To"] == "user1@example.com"
    assert parsed["Message-ID"].endswith("@acme.example>")


recipients = st.builds(
    lambda local, domain: f"{local}@{domain}.example",
    st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}", fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,60}", fullmatch=True),
)
label_text = st.from_regex(rf"[\x21-\x7b\x7d\x7e]{{1,{MAX_LABEL}}}", fullmatch=True)


@given(recipients, label_text)
def test_meta_header_is_written_on_one_line_byte_exact(recipient: str, label: str) -> None:
    """gh-124452: whatever its length, the meta is neither folded nor RFC 2047 encoded."""
    meta = meta_for(recipient, label)
    raw = to_bytes(build_message(PROVIDER, meta))
    expected = f"{HEADER_NAME}: {meta.encode()}".encode()
    assert header_line(raw, HEADER_NAME) == expected
    assert parse_meta(header_line(raw, HEADER_NAME).split(b": ", 1)[1].decode()) == meta


def test_a_header_that_cannot_fit_one_line_is_refused_not_mangled() -> None:
    with pytest.raises(MessageError, match="line limit"):
        build_message(PROVIDER, meta_for(label="x" * 990))


def test_preference_center_none_writes_no_list_unsubscribe() -> None:
    raw = to_bytes(build_message(PROVIDER, meta_for()))
    assert b"List-Unsubscribe" not in raw


def test_preference_center_clevertap_points_at_the_receiver_page() -> None:
    provider = Provider(**{**_fields(PROVIDER), "preference_center": "clevertap"})
    raw = to_bytes(build_message(provider, meta_for(), receiver_url="http://127.0.0.1:8025/"))
    line = header_line(raw, LIST_UNSUBSCRIBE).decode()
    assert line.startswith("List-Unsubscribe: <http://127.0.0.1:8025/preferences?meta=user1%40")
    assert line.endswith("%7C-17005907%7C>")
    assert header_line(raw, LIST_UNSUBSCRIBE_POST).decode().endswith(ONE_CLICK)


def test_preference_center_clevertap_needs_the_receiver_url() -> None:
    provider = Provider(**{**_fields(PROVIDER), "preference_center": "clevertap"})
    with pytest.raises(MessageError, match="receiver"):
        build_message(provider, meta_for())


def test_preference_center_custom_fills_the_placeholders() -> None:
    provider = Provider(
        **{
            **_fields(PROVIDER),
            "preference_center": "custom",
            "preference_center_url": "https://acme.example/p?e={email}&id={message_id}",
        }
    )
    raw = to_bytes(build_message(provider, meta_for("a+b@example.com")))
    line = header_line(raw, LIST_UNSUBSCRIBE).decode()
    assert line == "List-Unsubscribe: <https://acme.example/p?e=a%2Bb%40example.com&id=-17005907>"
    assert (
        header_line(raw, LIST_UNSUBSCRIBE_POST) == b"List-Unsubscribe-Post: " + ONE_CLICK.encode()
    )


def _fields(provider: Provider) -> dict[str, object]:
    return {name: getattr(provider, name) for name in provider.__dataclass_fields__}


KEY = LinkKey("2026a", b"s" * 32)


def _link(raw: bytes) -> str:
    return header_line(raw, LIST_UNSUBSCRIBE).decode().split(": ", 1)[1].strip("<>")


def test_with_a_link_key_the_receiver_page_link_is_signed_in_header_and_body() -> None:
    """Issue 12: `sig` = sign_meta(meta text) in List-Unsubscribe and the body's link alike."""
    provider = Provider(**{**_fields(PROVIDER), "preference_center": "clevertap", "link_key": KEY})
    message = build_message(provider, meta_for(), receiver_url="http://127.0.0.1:8025")
    link = _link(to_bytes(message))
    query = parse_qs(urlsplit(link).query)
    assert verify_meta(meta_for().encode(), query["sig"][0], [KEY]) is LinkVerdict.VALID
    assert link in message.get_content()


def test_a_custom_center_gets_the_signature_only_where_it_asks_for_sig() -> None:
    fields = {**_fields(PROVIDER), "preference_center": "custom", "link_key": KEY}
    asks = Provider(
        **{**fields, "preference_center_url": "https://acme.example/p?m={meta}&s={sig}"}
    )
    query = parse_qs(urlsplit(_link(to_bytes(build_message(asks, meta_for())))).query)
    assert verify_meta(meta_for().encode(), query["s"][0], [KEY]) is LinkVerdict.VALID
    plain = Provider(**{**fields, "preference_center_url": "https://acme.example/p?m={meta}"})
    assert "sig" not in _link(to_bytes(build_message(plain, meta_for())))


def test_a_test_email_link_is_never_signed() -> None:
    """The page: "The Unsubscribe link does not work [for] test emails"; unsigned, it cannot."""
    provider = Provider(**{**_fields(PROVIDER), "preference_center": "clevertap", "link_key": KEY})
    raw = to_bytes(build_test_email(provider, meta_for(), receiver_url="http://127.0.0.1:8025"))
    assert "sig" not in parse_qs(urlsplit(_link(raw)).query)


@given(st.text(max_size=60))
def test_the_fast_quote_is_urllib_quote_with_nothing_safe(text: str) -> None:
    """Issue 13: the preference link's meta is quoted on every message; the C-speed form must
    write exactly what `urllib.parse.quote(text, safe="")` writes (any text, ASCII or not)."""
    assert _quote(text) == quote(text, safe="")
