"""Issue 12: every unbounded input has a documented limit, enforced at exactly max and max + 1, and
the meta check agrees with a plain statement of the layout (PROTOCOL.md sections 2 and 3)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reference_impl.protocol import replies as r
from reference_impl.protocol.limits import (
    MAX_DESCRIPTION_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_META_LENGTH,
)
from reference_impl.protocol.meta import MetaError, parse_meta, well_formed_metas
from reference_impl.protocol.payload import PayloadRejected, read_batch
from tests.reference_impl.strategies import envelope

TAIL = "|1568798080|1730714617|20241104|0|wzrk_default|-1|"
EMAIL = "u@example.com"


def meta_of_length(length: int) -> str:
    """A valid meta of exactly `length` characters, the label grown to fit."""
    short = f"{EMAIL}|1568798080|1730714617|20241104|0|l|-1|"
    return short.replace("|l|", "|" + "l" * (length - len(short) + 1) + "|")


def unprocessed(event: dict[str, Any]) -> list[str]:
    batch = read_batch(envelope([event]))
    return [entry[r.ERROR_DESCRIPTION_KEY] for entry in batch.unprocessed]


def event(**fields: Any) -> dict[str, Any]:
    return {"type": "hard_bounce", "email": EMAIL, "meta": EMAIL + TAIL, **fields}


def test_meta_limit_is_at_least_8_kib_for_real_labels() -> None:
    assert MAX_META_LENGTH >= 8192


def test_a_meta_of_exactly_the_limit_is_valid_and_one_more_is_invalid_meta() -> None:
    at_limit, over = meta_of_length(MAX_META_LENGTH), meta_of_length(MAX_META_LENGTH + 1)
    assert (len(at_limit), len(over)) == (MAX_META_LENGTH, MAX_META_LENGTH + 1)
    assert parse_meta(at_limit).encode() == at_limit
    assert well_formed_metas([at_limit])
    with pytest.raises(MetaError, match="over 8192"):
        parse_meta(over)
    assert not well_formed_metas([over])
    assert unprocessed(event(meta=at_limit)) == []
    assert unprocessed(event(meta=over)) == [r.INVALID_META]


def test_an_email_of_exactly_the_limit_is_valid_and_one_more_is_invalid_email() -> None:
    at_limit = "u" * (MAX_EMAIL_LENGTH - len("@example.com")) + "@example.com"
    assert unprocessed(event(email=at_limit)) == []
    assert unprocessed(event(email="u" + at_limit)) == [r.INVALID_EMAIL]


def test_a_description_of_exactly_the_limit_is_kept_and_one_more_is_invalid() -> None:
    assert unprocessed(event(description="d" * MAX_DESCRIPTION_LENGTH)) == []
    over = "d" * (MAX_DESCRIPTION_LENGTH + 1)
    assert unprocessed(event(description=over)) == [r.INVALID_DESCRIPTION]


@pytest.mark.parametrize("field", ["account_id", "sent_at", "variant", "message_id"])
def test_a_huge_integer_field_is_invalid_meta_not_a_server_error(field: str) -> None:
    """5000 digits made int() raise a bare ValueError (the 4300-digit guard), escaping as a 500."""
    fields = {"account_id": 1, "sent_at": 2, "variant": 4, "message_id": 6}
    parts = (EMAIL + TAIL).split("|")
    parts[fields[field]] = "9" * 5000
    with pytest.raises(MetaError):
        parse_meta("|".join(parts))
    assert unprocessed(event(meta="|".join(parts))) == [r.INVALID_META]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_standard_json_literals_make_the_body_unreadable(literal: str) -> None:
    """Strict RFC 8259 in: Python's parser takes these, and echoing one made a reply not JSON."""
    body = json.dumps({"version": "v2", "events": {"failed": [event()]}})
    body = body.replace('"hard_bounce"', f'"hard_bounce", "score": {literal}')
    with pytest.raises(PayloadRejected) as refused:
        read_batch(body.encode())
    assert refused.value.reply == r.error_reply(400, r.READ_ERROR)


def reference_spec(value: str) -> bool:
    """The meta layout of PROTOCOL.md section 2, said plainly, without regular expressions."""
    if not value or len(value) > MAX_META_LENGTH:
        return False
    if any(not 0x21 <= ord(c) <= 0x7E for c in value):
        return False
    parts = value.rsplit("|", 7)
    if len(parts) != 8:
        return False
    email, account, sent_at, date, variant, label, message_id, trailer = parts
    local, at, domain = email.rpartition("@")
    if trailer or not (at and local and domain) or not label:
        return False
    digits = [account, sent_at, variant, message_id.removeprefix("-")]
    if any(not d or not d.isascii() or not d.isdigit() or len(d) > 19 for d in digits):
        return False
    values = [int(account), int(sent_at), int(variant), int(message_id)]
    if not all(-(2**63) <= v < 2**63 for v in values):
        return False
    day = datetime.datetime.fromtimestamp(int(sent_at) // 86400 * 86400, datetime.UTC)
    return day.strftime("%Y%m%d") == date


# Near-metas: the valid layout's own characters, so random draws hit its edges ('@' and '|' in
# odd places, digits where a label goes) far more often than arbitrary text would.
PIECES = st.sampled_from(
    ["a", "@", "|", "@@", "||", "0", "-", "1730714617", "20241104", "wzrk_default", ".", " ", "é"]
)
NEAR_METAS = st.builds(
    lambda head, tail: "".join(head) + "|1568798080|1730714617|20241104|0|" + "".join(tail),
    st.lists(PIECES, max_size=12),
    st.lists(PIECES, max_size=8),
) | st.lists(PIECES, max_size=30).map("".join)


@given(NEAR_METAS)
@example("a" + "@" * 3000 + TAIL)
@example('"a@b"@c' + TAIL)
@example("a@b" + TAIL.replace("|-1|", "|-9223372036854775809|"))
def test_meta_validation_agrees_with_the_plain_statement_of_the_layout(value: str) -> None:
    try:
        parse_meta(value)
        parsed = True
    except MetaError:
        parsed = False
    assert parsed == reference_spec(value)
    if well_formed_metas([value]):
        assert parsed
