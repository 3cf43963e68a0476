"""The meta codec (PROTOCOL.md section 2): layout, round trip, and errors naming the field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.protocol.meta import (
    Meta,
    MetaColumns,
    MetaError,
    _diagnose,
    build_meta,
    meta_columns,
    parse_meta,
    well_formed_metas,
)
from tests.samples import sample

VISIBLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
LOCAL = st.text(VISIBLE, min_size=1, max_size=64)
DOMAIN = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="@"),
    min_size=1,
    max_size=60,
)
LABEL = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="|"),
    min_size=1,
    max_size=80,
)
metas = st.builds(
    Meta,
    email=st.builds(lambda local, domain: f"{local}@{domain}", LOCAL, DOMAIN),
    account_id=st.integers(0, 10**12),
    sent_at=st.integers(0, 253402300799),
    variant=st.integers(0, 10**6),
    label=LABEL,
    message_id=st.integers(-(2**63), 2**63 - 1),
)


def test_vendor_samples_parse_and_rebuild_byte_exact() -> None:
    """Every meta in the vendor's sample payloads parses, and rebuilding it gives the same bytes."""
    for event in sample("callback-request.json")["events"]["failed"]:
        assert build_meta(parse_meta(event["meta"])) == event["meta"]


def test_sample_fields_are_read_in_the_documented_order() -> None:
    meta = parse_meta("user1@example.com|1568798080|1730714617|20241104|0|wzrk_default|-17005907|")
    assert meta == Meta("user1@example.com", 1568798080, 1730714617, 0, "wzrk_default", -17005907)
    assert meta.send_date == "20241104"


@given(metas)
def test_build_then_parse_round_trips_any_field_values(meta: Meta) -> None:
    """Build/parse is lossless for any valid field values, pipes in the local part included."""
    encoded = build_meta(meta)
    assert parse_meta(encoded) == meta
    assert encoded.endswith("|")


def test_pipe_in_local_part_is_kept_in_the_email_field() -> None:
    meta = Meta("a|b@example.com", 1, 1730714617, 2, "spring", 5)
    assert parse_meta(build_meta(meta)).email == "a|b@example.com"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (None, "meta"),
        (17, "meta"),
        ("", "meta"),
        ("a b@example.com|1|1730714617|20241104|0|l|1|", "meta"),
        ("u@example.com|1|1730714617|20241104|0|l|1", "meta"),
        ("u@example.com|1|1730714617|20241104|0|l|1|x", "trailer"),
        ("example.com|1|1730714617|20241104|0|l|1|", "email"),
        ("u@example.com|x1|1730714617|20241104|0|l|1|", "account_id"),
        ("u@example.com|1|17307146.7|20241104|0|l|1|", "sent_at"),
        ("u@example.com|1|1730714617|20241105|0|l|1|", "send_date"),
        ("u@example.com|1|1730714617|20241104|-1|l|1|", "variant"),
        ("u@example.com|1|1730714617|20241104|0||1|", "label"),
        ("u@example.com|1|1730714617|20241104|0|l|1.5|", "message_id"),
        ("u@example.com|1|1730714617|20241104|0|l||", "message_id"),
        ("u@example.com|1|1730714617|20241104|0|l|1\x00|", "meta"),
    ],
)
def test_malformed_meta_error_names_the_bad_field(value: object, field: str) -> None:
    with pytest.raises(MetaError) as raised:
        parse_meta(value)
    assert raised.value.field == field
    assert field in str(raised.value)


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        (Meta("no-at-sign", 1, 1), "email"),
        (Meta("a b@example.com", 1, 1), "email"),
        (Meta("u@example.com", -1, 1), "account_id"),
        (Meta("u@example.com", 1, -5), "sent_at"),
        (Meta("u@example.com", 1, 1, variant=-1), "variant"),
        (Meta("u@example.com", 1, 1, label="a|b"), "label"),
        (Meta("u@example.com", 1, 1, label=""), "label"),
        (Meta("u@example.com", 1, 10**20), "sent_at"),
    ],
)
def test_build_refuses_fields_that_would_not_parse_back(meta: Meta, field: str) -> None:
    with pytest.raises(MetaError) as raised:
        build_meta(meta)
    assert raised.value.field == field


@given(
    st.one_of(
        metas.map(build_meta),
        metas.map(build_meta).flatmap(
            lambda value: st.integers(0, len(value) - 1).map(
                lambda cut: value[:cut] + value[cut + 1 :]
            )
        ),
        st.text(st.sampled_from("0123456789|@ab-_ \x00"), max_size=60),
    )
)
def test_fast_path_accepts_exactly_what_the_field_checks_accept(value: str) -> None:
    """parse_meta's one-regex path must never disagree with the diagnosing parser."""
    try:
        expected: object = _diagnose(value)
    except MetaError as error:
        expected = type(error)
    try:
        actual: object = parse_meta(value)
    except MetaError as error:
        actual = type(error)
    assert actual == expected


def redated(value: str, date: str) -> str:
    """The meta with its send date replaced: invalid unless `date` happens to be the right one."""
    email, account, sent_at, _, *rest = value.rsplit("|", 7)
    return "|".join([email, account, sent_at, date, *rest])


NEAR_METAS = st.one_of(
    metas.map(build_meta),
    metas.map(build_meta).flatmap(
        lambda value: st.integers(0, len(value) - 1).map(lambda cut: value[:cut] + value[cut + 1 :])
    ),
    st.tuples(metas.map(build_meta), metas.map(build_meta)).map("\n".join),
    metas.map(build_meta).map(lambda value: redated(value, "20000101")),
    st.text(st.sampled_from("0123456789|@ab-_ \n\x00"), max_size=60),
)


@given(st.lists(NEAR_METAS, max_size=8))
def test_batch_check_and_batch_decoding_agree_with_parse_meta(values: list[str]) -> None:
    """The receiver checks a batch's metas in one call before answering and decodes them in one
    call afterwards: neither may accept a value `parse_meta` refuses, nor decode one differently."""
    try:
        parsed = [parse_meta(value) for value in values]
    except MetaError:
        assert not well_formed_metas(values)
        with pytest.raises(MetaError):
            meta_columns(values)
        return
    assert meta_columns(values) == MetaColumns(
        [meta.email for meta in parsed],
        [meta.message_id for meta in parsed],
        [meta.label for meta in parsed],
        [meta.variant for meta in parsed],
    )


def test_batch_check_takes_the_common_form_in_one_call() -> None:
    """The vendor's samples are in the common form, so a batch of them needs no per-value parse."""
    values = [sample("callback-request.json")["events"]["failed"][i]["meta"] for i in range(3)]
    assert well_formed_metas(values * 300)
