"""Read one header's value from raw message bytes, byte-exact.

The ESP's one duty towards the meta is to echo it unchanged, so this deliberately does not use
`email.parser`: on Python 3.11.7 a folded header parses back with a leading space (cpython
gh-124452), and a parser would also decode RFC 2047 encoded-words, i.e. change the bytes. Here the
only transformation is RFC 5322 unfolding: each CRLF (or bare LF) that precedes a continuation line
is removed, nothing else. The whitespace between the colon and the value, and trailing whitespace,
are not part of the value.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import re

META_HEADER = b"X-CleverTap_META"
MESSAGE_ID_HEADER = b"Message-ID"
_WSP = b" \t"
_WORD = rb"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?="
_ENCODED_WORD = re.compile(_WORD)
_ENCODED_SEQUENCE = re.compile(_WORD + rb"(?:[ \t]+" + _WORD + rb")*")


def header_block(raw: bytes) -> bytes:
    """The header section: everything before the first empty line (CRLF CRLF or LF LF)."""
    ends = [pos for pos in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if pos >= 0]
    return raw[: min(ends)] if ends else raw


def _lines(block: bytes) -> list[bytes]:
    return [line[:-1] if line.endswith(b"\r") else line for line in block.split(b"\n")]


def extract_header(raw: bytes, name: bytes = META_HEADER) -> bytes | None:
    """The unfolded value of the first `name` header, or None when the message has none."""
    wanted = name.lower() + b":"
    found: list[bytes] | None = None
    for line in _lines(header_block(raw)):
        if found is not None:
            if line[:1] and line[:1] in _WSP:
                found.append(line)
                continue
            break
        if line[: len(wanted)].lower() == wanted:
            found = [line[len(wanted) :]]
    if found is None:
        return None
    return b"".join(found).strip(_WSP)


def message_key(raw: bytes, meta: bytes | None) -> str:
    """A stable identity for a message, for seeding its outcomes: meta, else Message-ID, else hash.

    Mail from the same platform send carries the same meta, so reruns reproduce; mail without a
    meta still gets a deterministic key from its own bytes.
    """
    if meta:
        return "meta:" + meta.decode("utf-8", "replace")
    message_id = extract_header(raw, MESSAGE_ID_HEADER)
    if message_id:
        return "mid:" + message_id.decode("utf-8", "replace")
    return "sha:" + hashlib.sha256(raw).hexdigest()


def _decode_word(encoding: bytes, text: bytes) -> bytes:
    if encoding in b"Qq":
        return binascii.a2b_qp(text, header=True)
    return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)


def has_encoded_word(value: bytes) -> bool:
    return _ENCODED_WORD.search(value) is not None


def decode_encoded_words(value: bytes) -> bytes | None:
    """The UTF-8 text of a value made only of RFC 2047 encoded-words, else None.

    Only a value that is wholly encoded-words (separated by folding whitespace, which RFC 2047
    6.2 says to drop) is decoded: a meta longer than a line can only travel that way. Anything
    else, or an unknown charset or bad encoding, returns None and the value is echoed as written.
    Adjacent words of one charset are joined before decoding, since encoders split multi-byte
    characters across words.
    """
    if _ENCODED_SEQUENCE.fullmatch(value) is None:
        return None
    parts: list[tuple[str, bytearray]] = []
    try:
        for charset_bytes, encoding, text in _ENCODED_WORD.findall(value):
            charset = codecs.lookup(charset_bytes.decode("ascii")).name
            data = _decode_word(encoding, text)
            if parts and parts[-1][0] == charset:
                parts[-1][1].extend(data)
            else:
                parts.append((charset, bytearray(data)))
        return "".join(bytes(data).decode(charset) for charset, data in parts).encode("utf-8")
    except (LookupError, ValueError, binascii.Error):
        return None
