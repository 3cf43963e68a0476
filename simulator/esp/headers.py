"""Read one header's value from raw message bytes, byte-exact.

The ESP's one duty towards the meta is to echo it unchanged, so this deliberately does not use
`email.parser`: on Python 3.11.7 a folded header parses back with a leading space (cpython
gh-124452), and a parser would also decode RFC 2047 encoded-words, i.e. change the bytes.

Unfolding (PROTOCOL.md section 2, "Long metas"). A meta over about 980 characters cannot travel on
one header line, and a relay breaks the line with CRLF and a space (Postfix's
`smtp_line_length_limit`). RFC 5322 unfolding removes only the CRLF and keeps that space, which
would put whitespace into a value that never contains any. So by default (`REMOVE`) each line
break before a continuation line is removed together with the folding whitespace around it, and
the meta comes back whole. `RFC5322` (`callbacks.meta_unfolding = "rfc5322"`) removes the CRLF
only, as the RFC says: a vendor profile plays with it the ESP that echoes a relayed meta with a
space in it. Either way the whitespace between the colon and the value, and trailing whitespace,
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
REMOVE = "remove"
RFC5322 = "rfc5322"
UNFOLDINGS = (REMOVE, RFC5322)
"""How a folded header is read back: folding whitespace removed (default), or kept (RFC 5322)."""
_CONTINUATION = (b" ", b"\t")
_LF = ord("\n")
_WORD = rb"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?="
_ENCODED_WORD = re.compile(_WORD)
# Adjacent words may be separated by folding whitespace, or by nothing once it was removed.
_ENCODED_SEQUENCE = re.compile(_WORD + rb"(?:[ \t]*" + _WORD + rb")*")


def header_block(raw: bytes) -> bytes:
    """The header section: everything before the first empty line (CRLF CRLF or LF LF)."""
    crlf = raw.find(b"\r\n\r\n")
    # Only an LF LF starting before the CRLF CRLF can end the block earlier, so the rest of the
    # body (nearly all of a message) is never scanned for it.
    lf = raw.find(b"\n\n", 0, len(raw) if crlf < 0 else crlf + 1)
    ends = [pos for pos in (crlf, lf) if pos >= 0]
    return raw[: min(ends)] if ends else raw


def _header_start(block: bytes, wanted: bytes) -> int:
    """Where the first line starting with `wanted` (lower case) begins, or -1."""
    lowered = block.lower()
    pos = lowered.find(wanted)
    while pos > 0 and lowered[pos - 1] != _LF:
        pos = lowered.find(wanted, pos + 1)
    return pos


def extract_header(raw: bytes, name: bytes = META_HEADER, unfolding: str = REMOVE) -> bytes | None:
    """The unfolded value of the first `name` header, or None when the message has none.

    `unfolding` is `REMOVE` (a fold leaves nothing behind: the header's value never holds
    whitespace) or `RFC5322` (a fold leaves its whitespace, as the RFC's unfolding does).

    Runs once per message on the SMTP event loop, so it searches the header block with
    `bytes.find` and walks only the lines of that one header (a line is what ends at LF, a CR
    before the LF is the line break's), instead of splitting every header line.
    """
    block = header_block(raw)
    wanted = name.lower() + b":"
    start = _header_start(block, wanted)
    if start < 0:
        return None
    keep = unfolding == RFC5322
    pieces = []
    begin = start + len(wanted)
    while True:
        end = block.find(b"\n", begin)
        line = block[begin:] if end < 0 else block[begin:end]
        line = line[:-1] if line.endswith(b"\r") else line
        pieces.append(line if keep else line.strip(_WSP))
        if end < 0 or block[end + 1 : end + 2] not in _CONTINUATION:
            break
        begin = end + 1
    return b"".join(pieces).strip(_WSP)


def raw_header(raw: bytes, name: bytes = META_HEADER) -> bytes | None:
    """The first `name` header's lines exactly as they arrived (name, colon, folds and all), or
    None: what the dashboard shows beside the value `extract_header` took from them."""
    block = header_block(raw)
    start = _header_start(block, name.lower() + b":")
    if start < 0:
        return None
    end = block.find(b"\n", start)
    while end >= 0 and block[end + 1 : end + 2] in _CONTINUATION:
        end = block.find(b"\n", end + 1)
    return (block[start:] if end < 0 else block[start : end + 1]).rstrip(b"\r\n")


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
    """Whether the value holds an RFC 2047 encoded-word; asked of every meta, so the regex runs
    only on a value that has the `=?` every encoded-word starts with."""
    return b"=?" in value and _ENCODED_WORD.search(value) is not None


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
