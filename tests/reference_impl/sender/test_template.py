"""The campaign template writes what `build_message` writes, recipient by recipient.

Requirement (issue 13): the fast path's bytes parse to the same headers and body as the stdlib's
per-message build, and the meta line is byte-exact; a recipient the stdlib would write differently
is built by the stdlib, never approximated.
"""

from __future__ import annotations

import re
from dataclasses import replace
from email import policy
from email.parser import BytesParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.protocol.links import LinkKey
from reference_impl.protocol.meta import HEADER_NAME, Meta
from reference_impl.sender.message import (
    MAX_LABEL,
    Content,
    MessageError,
    Template,
    build_message,
    to_bytes,
)
from reference_impl.sender.provider import Provider

ACCOUNT = 1568798080
RECEIVER = "http://127.0.0.1:9/"
PROVIDER = Provider(
    nickname="p",
    host="127.0.0.1",
    port=25,
    from_address="news@acme.example",
    from_name="Acme Nöwsletters",
    reply_address="support@acme.example",
    account_id=ACCOUNT,
)
# Message-ID's clock, pid and random number differ from build to build; the rest must not.
MSGID_RANDOM = re.compile(rb"Message-ID: <\d+\.\d+\.\d+\.")

atom = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}"
recipients = st.one_of(
    st.from_regex(rf"{atom}(\.{atom}){{0,2}}@[a-z0-9]{{1,20}}\.example", fullmatch=True),
    # Addresses the stdlib may write otherwise: a quoted local part, an address literal.
    st.from_regex(r'"[a-z.,:]{1,10}"@[a-z]{1,10}\.example', fullmatch=True),
    st.from_regex(r"[a-z]{1,10}@\[10\.0\.0\.[0-9]\]", fullmatch=True),
)
labels = st.from_regex(rf"[\x21-\x7b\x7d\x7e]{{1,{MAX_LABEL}}}", fullmatch=True)
centers = st.sampled_from(["none", "clevertap", "custom"])
custom_urls = st.sampled_from(
    [
        "https://acme.example/prefs?m={meta}&e={email}&id={message_id}&s={sig}",
        "https://acme.example/prefs/{email}",
        "https://acme.example/prëfs?m={meta}",
        # Fits one line with a short meta, not with a long one: that recipient's body is encoded.
        "https://acme.example/" + "p" * 850 + "?m={meta}",
    ]
)
contents = st.builds(
    Content,
    st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=80),
    st.sampled_from(
        [
            Content().body,
            "Grüße, {label} / {variant}\n",
            "one line, no newline at the end {label}",
            "x" * 1200 + "\n",
        ]
    ),
)


def normalised(data: bytes) -> bytes:
    return MSGID_RANDOM.sub(b"Message-ID: <", data)


@given(
    recipients,
    labels,
    st.integers(0, 2**31),
    st.integers(-(2**53), -1),
    st.integers(0, 2**33),
    centers,
    custom_urls,
    st.booleans(),
    contents,
)
def test_template_bytes_parse_like_the_stdlib_build_and_keep_the_meta_line(
    recipient: str,
    label: str,
    variant: int,
    message_id: int,
    sent_at: int,
    center: str,
    custom_url: str,
    keyed: bool,
    content: Content,
) -> None:
    provider = replace(
        PROVIDER,
        preference_center=center,
        preference_center_url=custom_url if center == "custom" else None,
        link_key=LinkKey("k1", b"s" * 16) if keyed else None,
    )
    meta = Meta(recipient, ACCOUNT, sent_at, variant, label, message_id)
    template = Template(
        provider,
        account_id=ACCOUNT,
        label=label,
        variant=variant,
        receiver_url=RECEIVER,
        content=content,
    )
    try:
        expected = to_bytes(build_message(provider, meta, receiver_url=RECEIVER, content=content))
    except MessageError as exc:
        with pytest.raises(MessageError, match=re.escape(str(exc))):
            template.render(meta)
        return
    fast = template.render(meta)
    assert normalised(fast) == normalised(expected)
    parse = BytesParser(policy=policy.default).parsebytes
    ours, theirs = parse(fast), parse(expected)
    assert [(k, v) for k, v in ours.items() if k != "Message-ID"] == [
        (k, v) for k, v in theirs.items() if k != "Message-ID"
    ]
    assert ours.get_content() == theirs.get_content()
    line = f"{HEADER_NAME}: {meta.encode()}\r\n".encode()
    assert b"\r\n" + line in fast.partition(b"\r\n\r\n")[0] + b"\r\n"


def test_a_plain_campaign_takes_the_fast_path() -> None:
    """The point of the template: a usual campaign is not built by the stdlib per message."""
    provider = replace(PROVIDER, preference_center="clevertap", link_key=LinkKey("k1", b"s" * 16))
    template = Template(
        provider, account_id=ACCOUNT, label="wzrk_default", variant=0, receiver_url=RECEIVER
    )
    meta = Meta("user+tag@example.com", ACCOUNT, 1730714617, 0, "wzrk_default", -17)
    assert template.fast
    expected = to_bytes(build_message(provider, meta, receiver_url=RECEIVER))
    assert normalised(template.render(meta)) == normalised(expected)
