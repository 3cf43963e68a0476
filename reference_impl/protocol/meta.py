"""The `X-CleverTap_META` codec: build a meta value from its fields and parse one back.

Pure functions and a named tuple, no I/O. The layout is inferred from the vendor's samples
(PROTOCOL.md section 2): eight pipe-separated fields, the last one empty::

    user1@example.com|1568798080|1730714617|20241104|0|wzrk_default|-17005907|

Parsing splits from the right, so the six fixed fields and the trailing empty field are always
found even when the recipient's local part contains a pipe (RFC 5322 allows `|` in an atom). The
label is the only other free-text field, so it alone is forbidden to contain a pipe.

Every field must be visible ASCII (0x21-0x7E): the value travels in a mail header and must come
back byte-exact, and whitespace is where header folding would break it. The numbers must fit in a
signed 64-bit integer, which is what the platform's ids are and what the store can keep; a larger
one is a malformed meta, refused for that event alone rather than failing the whole callback.

A value longer than `limits.MAX_META_LENGTH` is malformed before anything else is looked at, and
every check here is linear in the value's length: a meta is attacker input (a callback event, a
preference link anyone can write).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

from reference_impl.errors import PlatformError
from reference_impl.protocol.limits import MAX_INTEGER_LENGTH, MAX_META_LENGTH

HEADER_NAME = "X-CleverTap_META"
DEFAULT_LABEL = "wzrk_default"
FIELD_COUNT = 8

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

# The common case in one pattern: no pipe in the email, an '@' that is neither first nor last,
# numbers short enough (18 digits) to be in range without checking. `parse_meta` matches one
# value with it; the batch functions match a thousand values, one per line, in a single call.
#
# The pattern must never backtrack more than linearly: a meta is attacker input and the regex
# engine holds the GIL, so one slow match stalls every thread of the receiver. Every field but the
# email is delimited by a character its class excludes, so it matches one way only. The email is
# made so by an atomic group: it runs to the last '@' of the field (one scan back from the pipe)
# and keeps it; the domain after it is possessive and holds no '@'. Its old form,
# `X[^|]*@[^|]*Y`, tried every '@' against every end, quadratic on `a@@@...@`.
_NOT_AT = r"[\x21-\x3f\x41-\x7b\x7d\x7e]"
_COMMON_FIELDS = (
    rf"{_NOT_AT}(?>[\x21-\x7b\x7d\x7e]*@){_NOT_AT}++",
    r"[0-9]{1,18}",
    r"[0-9]{1,18}",
    r"[0-9]{8}",
    r"[0-9]{1,18}",
    r"[\x21-\x7b\x7d\x7e]+",
    r"-?[0-9]{1,18}",
)
_WELL_FORMED_SOURCE = r"\|".join(f"({pattern})" for pattern in _COMMON_FIELDS) + r"\|"
_WELL_FORMED = re.compile(_WELL_FORMED_SOURCE)
_WELL_FORMED_LINES = re.compile(f"^{_WELL_FORMED_SOURCE}$", re.MULTILINE)
# The same lines capturing only "sent_at|send_date": what checking (not decoding) a batch needs.
_STAMPED_LINES = re.compile(
    "^(?:{})\\|(?:{})\\|({}\\|{})\\|(?:{})\\|(?:{})\\|(?:{})\\|$".format(*_COMMON_FIELDS),
    re.MULTILINE,
)
_DIGITS = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"-?[0-9]+")
_VISIBLE = re.compile(r"[\x21-\x7e]+")


class MetaError(PlatformError, ValueError):
    """A meta value, or one of its fields, is malformed; `field` names which."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"meta field {field!r}: {reason}")
        self.field = field
        self.reason = reason


class Meta(NamedTuple):
    """The seven meaningful fields of a meta value, typed (a tuple: receivers build thousands)."""

    email: str
    account_id: int
    sent_at: int
    variant: int = 0
    label: str = DEFAULT_LABEL
    message_id: int = 0

    @property
    def send_date(self) -> str:
        """Field 4: the UTC calendar date of `sent_at`, as YYYYMMDD."""
        return _utc_date(self.sent_at // 86400)

    def encode(self) -> str:
        return build_meta(self)


@lru_cache(maxsize=4096)
def _utc_date(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y%m%d")


def _check_email(email: object) -> str:
    if not isinstance(email, str) or not email:
        raise MetaError("email", "must be a non-empty string")
    if not _VISIBLE.fullmatch(email):
        raise MetaError("email", "must be visible ASCII with no whitespace")
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise MetaError("email", f"{email!r} is not an address of the form local@domain")
    return email


def _check_label(label: object) -> str:
    if not isinstance(label, str) or not label:
        raise MetaError("label", "must be a non-empty string")
    if not _VISIBLE.fullmatch(label) or "|" in label:
        raise MetaError("label", "must be visible ASCII with no whitespace and no '|'")
    return label


def _check_non_negative(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise MetaError(field, f"must be a non-negative 64-bit integer, got {value!r}")
    return value


def build_meta(meta: Meta) -> str:
    """Encode `meta`, refusing any field value that could not be parsed back identically."""
    _check_email(meta.email)
    _check_non_negative("account_id", meta.account_id)
    _check_non_negative("sent_at", meta.sent_at)
    _check_non_negative("variant", meta.variant)
    _check_label(meta.label)
    message_id = meta.message_id
    if isinstance(message_id, bool) or not isinstance(message_id, int):
        raise MetaError("message_id", f"must be an integer, got {message_id!r}")
    if not INT64_MIN <= message_id <= INT64_MAX:
        raise MetaError("message_id", f"must fit in a signed 64-bit integer, got {message_id}")
    try:
        send_date = meta.send_date
    except (OverflowError, OSError, ValueError) as exc:
        raise MetaError("sent_at", f"{meta.sent_at} is not a representable time") from exc
    fields = (
        meta.email,
        str(meta.account_id),
        str(meta.sent_at),
        send_date,
        str(meta.variant),
        meta.label,
        str(meta.message_id),
        "",
    )
    value = "|".join(fields)
    if len(value) > MAX_META_LENGTH:
        raise MetaError("meta", f"is {len(value)} characters long, over {MAX_META_LENGTH}")
    return value


def _int_field(field: str, text: str, pattern: re.Pattern[str]) -> int:
    # Bounded first: int() is quadratic in the digits, and refuses over 4300 with a ValueError.
    if len(text) > MAX_INTEGER_LENGTH:
        raise MetaError(field, f"{len(text)} characters long, over {MAX_INTEGER_LENGTH}")
    if not pattern.fullmatch(text):
        expected = "an integer" if pattern is _SIGNED else "digits only"
        raise MetaError(field, f"{text!r} is not {expected}")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise MetaError(field, f"{text} does not fit in a signed 64-bit integer")
    return value


def parse_meta(value: object) -> Meta:
    """Parse a meta value, raising `MetaError` naming the first field that is wrong.

    A receiver parses every meta it gets, so well-formed values take one regular expression;
    only a value that fails it goes through the field-by-field checks that name the culprit.
    """
    if type(value) is str and len(value) <= MAX_META_LENGTH:
        match = _WELL_FORMED.fullmatch(value)
    else:
        match = None
    if match:
        email, account, sent_at, date, variant, label, message_id = match.groups()
        if _dated(sent_at, date):
            return Meta(email, int(account), int(sent_at), int(variant), label, int(message_id))
    return _diagnose(value)


def _dated(sent_at: str, date: str) -> bool:
    try:
        return _utc_date(int(sent_at) // 86400) == date
    except (OverflowError, OSError, ValueError):
        return False


class MetaColumns(NamedTuple):
    """The fields of many metas, column by column, in the order the metas were given."""

    emails: list[str]
    message_ids: list[int]
    labels: list[str]
    variants: list[int]


def one_per_line(values: list[str]) -> str | None:
    """The values joined one per line, or None if a value holds a line break of its own.

    The batch checks match a column of values with one regex call over these lines; a value
    holding a newline could otherwise count as two lines and stand in for a bad neighbour."""
    joined = "\n".join(values)
    return joined if joined.count("\n") == len(values) - 1 else None


def well_formed_metas(values: list[str]) -> bool:
    """True if every value is a valid meta in the common form, checked in one regex call.

    A receiver checks metas a thousand at a time before it answers, and only needs to know that
    they are valid; decoding them into fields is left to `meta_columns`, after the answer. False
    means "at least one value is not in the common form", never "invalid": the caller then
    parses each value with `parse_meta`, which is the reference, and a property test checks that
    this never accepts a value `parse_meta` refuses.
    """
    if values and max(map(len, values)) > MAX_META_LENGTH:
        return False
    joined = one_per_line(values)
    if joined is None:
        return False
    stamps = _STAMPED_LINES.findall(joined)
    return len(stamps) == len(values) and all(_dated(*stamp.split("|")) for stamp in set(stamps))


def meta_columns(values: list[str]) -> MetaColumns:
    """Decode valid metas into columns: one regex call for a batch in the common form, else
    `parse_meta` on each value (raising `MetaError` for an invalid one)."""
    joined = one_per_line(values) if values and max(map(len, values)) <= MAX_META_LENGTH else None
    fields = [] if joined is None else _WELL_FORMED_LINES.findall(joined)
    common = values and len(fields) == len(values)
    if common and all(_dated(sent_at, date) for sent_at, date in {(f[2], f[3]) for f in fields}):
        emails, _, _, _, variants, labels, message_ids = zip(*fields, strict=True)
        return MetaColumns(
            list(emails), list(map(int, message_ids)), list(labels), list(map(int, variants))
        )
    metas = [parse_meta(value) for value in values]
    return MetaColumns(
        [meta.email for meta in metas],
        [meta.message_id for meta in metas],
        [meta.label for meta in metas],
        [meta.variant for meta in metas],
    )


def _diagnose(value: object) -> Meta:
    if not isinstance(value, str):
        raise MetaError("meta", f"must be a string, got {type(value).__name__}")
    if not value:
        raise MetaError("meta", "is empty")
    if len(value) > MAX_META_LENGTH:
        raise MetaError("meta", f"is {len(value)} characters long, over {MAX_META_LENGTH}")
    if not _VISIBLE.fullmatch(value):
        raise MetaError("meta", "must be visible ASCII with no whitespace or control characters")
    parts = value.rsplit("|", FIELD_COUNT - 1)
    if len(parts) != FIELD_COUNT:
        raise MetaError("meta", f"has {len(parts)} '|'-separated fields, expected {FIELD_COUNT}")
    email, account, sent_at_text, date, variant, label, message_id, trailer = parts
    if trailer:
        raise MetaError("trailer", f"must be empty (value ends with '|'), got {trailer!r}")
    _check_email(email)
    account_id = _int_field("account_id", account, _DIGITS)
    sent_at = _int_field("sent_at", sent_at_text, _DIGITS)
    variant_number = _int_field("variant", variant, _DIGITS)
    _check_label(label)
    message = _int_field("message_id", message_id, _SIGNED)
    meta = Meta(email, account_id, sent_at, variant_number, label, message)
    try:
        expected_date = meta.send_date
    except (OverflowError, OSError, ValueError) as exc:
        raise MetaError("sent_at", f"{sent_at_text} is not a representable time") from exc
    if date != expected_date:
        raise MetaError("send_date", f"{date!r} is not the UTC date of sent_at ({expected_date})")
    return meta
