"""Header extraction: byte-exact; a fold leaves nothing behind by default (a relay's CRLF SP in
a long meta), or its whitespace under RFC 5322 unfolding; never the gh-124452 leading space."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

from hypothesis import given
from hypothesis import strategies as st

from simulator.esp.headers import (
    REMOVE,
    RFC5322,
    UNFOLDINGS,
    decode_encoded_words,
    extract_header,
    header_block,
    message_key,
    raw_header,
)

META = b"user1@example.com|1568798080|1730714617|20241104|0|wzrk_default|-17005907|"


def test_plain_header_value_is_returned_exactly() -> None:
    raw = b"From: a@b\r\nX-CleverTap_META: " + META + b"\r\n\r\nbody"
    assert extract_header(raw) == META


def test_folded_value_has_no_leading_space_gh_124452() -> None:
    raw = b"X-CleverTap_META:\r\n " + META + b"\r\nSubject: s\r\n\r\n"
    assert extract_header(raw) == META


def test_a_folded_meta_loses_its_folding_whitespace_by_default() -> None:
    """Issue 11: a meta never contains whitespace, so a fold (a relay breaking a line over 998
    characters with CRLF SP) leaves nothing behind, and the meta comes back whole."""
    raw = b"X-CleverTap_META: abc|\r\n def|  \r\n\t ghi|\r\nTo: x\r\n\r\n"
    assert extract_header(raw) == extract_header(raw, unfolding=REMOVE) == b"abc|def|ghi|"


def test_rfc5322_unfolding_removes_the_crlf_only_and_keeps_the_space() -> None:
    """The vendor-profile option (`callbacks.meta_unfolding = "rfc5322"`) for negative tests."""
    raw = b"X-CleverTap_META: abc|\r\n def|\r\n\tghi|\r\nTo: x\r\n\r\n"
    assert extract_header(raw, unfolding=RFC5322) == b"abc| def|\tghi|"


def test_a_relay_folded_2000_character_meta_is_read_whole() -> None:
    meta = b"bounce+relay@sim.test|1568798080|1730714617|20241104|0|" + b"x" * 1950 + b"|-1|"
    raw = b"X-CleverTap_META: " + meta[:980] + b"\r\n " + meta[980:1960] + b"\r\n " + meta[1960:]
    assert extract_header(raw + b"\r\n\r\nbody") == meta
    spaced = extract_header(raw + b"\r\n\r\nbody", unfolding=RFC5322)
    assert spaced == meta[:980] + b" " + meta[980:1960] + b" " + meta[1960:]


def test_encoded_words_joined_by_a_removed_fold_still_decode() -> None:
    assert decode_encoded_words(b"=?utf-8?q?h=C3?==?utf-8?q?=A9?=") == "hé".encode()


def test_name_is_case_insensitive_and_body_is_not_searched() -> None:
    raw = b"x-clevertap_meta: v1\r\n\r\nX-CleverTap_META: in-body\r\n"
    assert extract_header(raw) == b"v1"
    assert extract_header(b"To: a\r\n\r\nX-CleverTap_META: in-body\r\n") is None


def test_bare_lf_messages_and_encoded_words_are_not_decoded() -> None:
    assert extract_header(b"X-CleverTap_META: =?utf-8?q?a=7C?=\n\nbody") == b"=?utf-8?q?a=7C?="


def test_similar_header_names_do_not_match() -> None:
    assert extract_header(b"X-CleverTap_META2: no\r\nX-CleverTap_META: yes\r\n\r\n") == b"yes"


def test_header_block_stops_at_first_blank_line() -> None:
    assert header_block(b"A: 1\r\n\r\nB: 2\n\nC") == b"A: 1"


def test_message_key_prefers_meta_then_message_id_then_hash() -> None:
    assert message_key(b"", META).startswith("meta:")
    assert message_key(b"Message-ID: <1@x>\r\n\r\n", None) == "mid:<1@x>"
    assert message_key(b"To: a\r\n\r\n", None).startswith("sha:")


@given(
    value=st.binary(min_size=1, max_size=900).map(lambda b: bytes(0x21 + c % 94 for c in b)),
    fold=st.sampled_from([b" ", b"\r\n ", b"\r\n\t", b"\n "]),
)
def test_any_visible_ascii_value_is_extracted_byte_exact(value: bytes, fold: bytes) -> None:
    raw = b"Subject: s\r\nX-CleverTap_META:" + fold + value + b"\r\nTo: t\r\n\r\nbody\r\n"
    assert extract_header(raw) == value


def test_a_value_wholly_of_encoded_words_decodes_to_the_original_text() -> None:
    meta = "bounce+m@b.example|1568798080|1730714617|20241104|0|wzrk_default|-17005000|" * 3
    mail = EmailMessage(policy=policy.SMTP)
    mail["X-CleverTap_META"] = meta
    folded = extract_header(mail.as_bytes())
    assert folded.startswith(b"=?utf-8?q?")
    assert decode_encoded_words(folded) == meta.encode()


def test_b_encoding_and_multibyte_split_across_words_decode() -> None:
    assert decode_encoded_words(b"=?UTF-8?B?aMOp?=") == "hé".encode()
    assert decode_encoded_words(b"=?utf-8?q?h=C3?= =?utf-8?q?=A9?=") == "hé".encode()
    assert decode_encoded_words(b"=?iso-8859-1?q?h=E9?=") == "hé".encode()


def test_anything_but_pure_encoded_words_is_left_alone() -> None:
    assert decode_encoded_words(b"a|=?utf-8?q?b?=|") is None
    assert decode_encoded_words(b"user@example.com|1|2|3|0|x|-1|") is None
    assert decode_encoded_words(b"=?no-such-charset?q?b?=") is None
    assert decode_encoded_words(b"=?utf-8?b?!!!?=") is None
    assert decode_encoded_words(b"=?utf-8?q?=FF?=") is None


def _reference_extract(raw: bytes, name: bytes, unfolding: str) -> bytes | None:
    """The specification, line by line: first line starting with `name:`, unfolded (each line's
    own whitespace around a fold dropped too, unless RFC 5322)."""
    ends = [pos for pos in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if pos >= 0]
    block = raw[: min(ends)] if ends else raw
    lines = [line[:-1] if line.endswith(b"\r") else line for line in block.split(b"\n")]
    wanted = name.lower() + b":"
    found: list[bytes] | None = None
    for line in lines:
        if found is not None:
            if line[:1] and line[:1] in b" \t":
                found.append(line)
                continue
            break
        if line[: len(wanted)].lower() == wanted:
            found = [line[len(wanted) :]]
    if found is None:
        return None
    if unfolding == REMOVE:
        found = [piece.strip(b" \t") for piece in found]
    return b"".join(found).strip(b" \t")


PIECES = [
    b"X-CleverTap_META:",
    b"x-clevertap_meta:",
    b"X-CleverTap_META2:",
    b"To: t",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b"a|b",
    b":",
    b"\r\n\r\n",
    b"\n\n",
]


@given(parts=st.lists(st.sampled_from(PIECES), max_size=30), unfolding=st.sampled_from(UNFOLDINGS))
def test_meta_extraction_is_byte_exact_on_any_mix_of_line_breaks_and_folds(
    parts: list[bytes], unfolding: str
) -> None:
    """Byte-exact meta extraction: the find-based fast path agrees with the line-by-line rule."""
    raw = b"".join(parts)
    expected = _reference_extract(raw, b"X-CleverTap_META", unfolding)
    assert extract_header(raw, unfolding=unfolding) == expected
    assert extract_header(raw, b"To", unfolding) == _reference_extract(raw, b"To", unfolding)


def test_the_header_as_it_arrived_keeps_its_folding_for_the_dashboard() -> None:
    """Issue 15: the dashboard shows the meta header's lines as sent, next to the value taken."""
    raw = b"From: a@b\r\nX-CleverTap_META: u@ex.co|1|\r\n 2|3|\r\nSubject: s\r\n\r\nbody"
    assert raw_header(raw) == b"X-CleverTap_META: u@ex.co|1|\r\n 2|3|"
    assert extract_header(raw) == b"u@ex.co|1|2|3|"
    assert raw_header(b"x-clevertap_meta:v") == b"x-clevertap_meta:v"
    assert raw_header(b"From: a@b\r\n\r\nX-CleverTap_META: in the body") is None
