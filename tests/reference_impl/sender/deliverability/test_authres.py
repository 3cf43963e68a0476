"""The platform side's reading of RFC 8601 `Authentication-Results` (what a receiving server,
such as the fake ESP with an `[authentication]` scenario, says it verified), and the findings of
`--deliverability --esp` drawn from it."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reference_impl.errors import PlatformError
from reference_impl.sender.deliverability import FAIL, PASS, WARN
from reference_impl.sender.deliverability import checks as c
from reference_impl.sender.deliverability.authres import (
    AuthResultsError,
    parse_authentication_results,
)
from simulator.esp.auth import Verdicts, header_value
from simulator.esp.auth.results import RESULTS, DkimResult

# The shape the fake ESP writes: one line, reasons quoted, the DMARC policy in a comment.
ALL_PASS = (
    "esp.bounceback.test; dkim=pass header.d=acme.example header.s=bb2026;"
    " spf=pass smtp.mailfrom=news@acme.example; dmarc=pass (p=reject) header.from=acme.example"
)


def test_methods_results_properties_reasons_and_comments_are_read() -> None:
    value = (
        'mx.example.org 1; dkim=fail reason="bad; sig (really)" header.d=x.example;'
        " spf=softfail (ip not listed) smtp.mailfrom=a@x.example; dmarc=pass (p=none)"
    )
    results = parse_authentication_results(value)
    assert results.authserv_id == "mx.example.org"
    dkim, spf, dmarc = results.results
    assert (dkim.method, dkim.result, dkim.reason) == ("dkim", "fail", "bad; sig (really)")
    assert dkim.properties == {"header.d": "x.example"}
    assert spf.comments == ("ip not listed",) and spf.properties["smtp.mailfrom"] == "a@x.example"
    assert dmarc.tag("p") == "none"


def test_none_means_no_results_and_folding_is_ignored() -> None:
    assert parse_authentication_results("example.com;\r\n none").results == ()
    folded = ALL_PASS.replace("; ", ";\r\n\t")
    assert parse_authentication_results(folded) == parse_authentication_results(ALL_PASS)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("dkim=pass", "no authserv-id"),
        ("mx; dkim", "is not method=result"),
        ("mx; dkim=pass (open", "unclosed comment"),
        ('mx; dkim=pass reason="open', "unclosed quote"),
    ],
)
def test_a_value_off_the_grammar_is_refused_naming_what_is_wrong(value: str, problem: str) -> None:
    with pytest.raises(AuthResultsError, match=problem) as caught:
        parse_authentication_results(value)
    assert isinstance(caught.value, PlatformError)


def _verdicts(value: str) -> dict[str, str]:
    return {f.check: f.verdict for f in c.check_reported(parse_authentication_results(value))}


def test_reported_passes_are_passes() -> None:
    assert _verdicts(ALL_PASS) == {c.DKIM: PASS, c.SPF: PASS, c.DMARC: PASS}


def test_reported_failures_fail_with_advice_and_softfail_warns() -> None:
    value = (
        'esp; dkim=fail reason="signature verification failed" header.d=acme.example;'
        " spf=softfail smtp.mailfrom=news@acme.example; dmarc=fail header.from=acme.example"
    )
    findings = c.check_reported(parse_authentication_results(value))
    assert [(f.check, f.verdict) for f in findings] == [
        (c.DKIM, FAIL),
        (c.SPF, WARN),
        (c.DMARC, FAIL),
    ]
    assert all(f.advice for f in findings)
    assert "signature verification failed" in findings[0].detail


def test_reported_dmarc_pass_under_p_none_warns() -> None:
    assert _verdicts(ALL_PASS.replace("(p=reject)", "(p=none)"))[c.DMARC] == WARN


def test_any_passing_signature_passes_dkim_and_a_missing_method_fails() -> None:
    value = "esp; dkim=fail header.d=other.example; dkim=pass header.d=acme.example"
    verdicts = _verdicts(value)
    assert verdicts == {c.DKIM: PASS, c.SPF: FAIL, c.DMARC: FAIL}


def test_quoted_property_values_are_read_unquoted() -> None:
    """RFC 8601 2.2: a pvalue that is no address, domain or token is a quoted-string, e.g. an
    address-literal HELO checked for a null sender."""
    results = parse_authentication_results(
        'esp.test; spf=none smtp.helo="[192.0.2.10]"; dkim=pass header.s="a\\"b"'
    )
    (spf,) = results.of("spf")
    (dkim,) = results.of("dkim")
    assert spf.properties == {"smtp.helo": "[192.0.2.10]"}
    assert dkim.properties == {"header.s": 'a"b'}


def test_a_dmarc_policy_comment_in_capitals_still_warns() -> None:
    """Servers write the policy as they like (`(p=NONE sp=NONE dis=NONE)`); p=none only
    monitors however it is spelled. Before, only a lower-case `p=none` warned."""
    results = parse_authentication_results(
        "mx.example; dkim=pass header.d=a.example; spf=pass smtp.mailfrom=n@a.example;"
        " dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=a.example"
    )
    (dmarc,) = [f for f in c.check_reported(results) if f.check == c.DMARC]
    assert dmarc.verdict == WARN


# --- the fake ESP's writer and this side's reader agree ------------------------------------------

_REASON = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_DOMAIN = st.lists(_LABEL, min_size=2, max_size=4).map(".".join)
_IDENTITY = st.one_of(
    _DOMAIN,
    st.builds(lambda local, domain: f"{local}@{domain}", _LABEL, _DOMAIN),
    st.builds(lambda ip: f"[{ip}]", st.ip_addresses(v=4).map(str)),
    st.builds(lambda local, domain: f'"{local}"@{domain}', _REASON, _DOMAIN),
)


def _flat(reason: str | None) -> str | None:
    """A reason as the header carries it: on one line; an empty one is not written."""
    return " ".join(reason.split()) or None if reason else None


@given(
    dkim=st.lists(
        st.tuples(st.sampled_from(RESULTS), _DOMAIN, _LABEL, st.none() | _REASON), max_size=3
    ),
    spf=st.tuples(st.sampled_from(RESULTS), st.sampled_from(["mailfrom", "helo"]), _IDENTITY),
    spf_reason=st.none() | _REASON,
    dmarc=st.tuples(st.sampled_from(RESULTS), st.none() | st.sampled_from(["none", "reject"])),
    dmarc_reason=st.none() | _REASON,
    from_domain=st.none() | _DOMAIN,
)
@example(
    dkim=[("pass", "a.example", "s", " ")],
    spf=("fail", "helo", "[192.0.2.1]"),
    spf_reason=' "x; (y)\\ ',
    dmarc=("pass", "none"),
    dmarc_reason="\t",
    from_domain="a.example",
)
def test_every_header_the_fake_esp_writes_reads_back_the_same(
    dkim: list, spf: tuple, spf_reason: str | None, dmarc: tuple, dmarc_reason: str | None,
    from_domain: str | None,
) -> None:  # fmt: skip
    """Two independent readings of RFC 8601: whatever the fake ESP writes (any result, reasons
    with quotes, `;` and parentheses, address-literal and quoted identities), the platform
    side reads the same methods, results, reasons, properties and DMARC policy. It found the
    ESP writing `reason=""` for a reason of whitespace only (the example)."""
    signatures = tuple(DkimResult(r, d, s, why) for r, d, s, why in dkim)
    verdicts = Verdicts(
        dkim=signatures[0].result if signatures else "none",
        dkim_domain=None,
        signatures=signatures,
        spf=spf[0],
        spf_domain=None,
        spf_scope=spf[1],
        spf_identity=spf[2],
        spf_reason=spf_reason,
        dmarc=dmarc[0],
        from_domain=from_domain,
        dmarc_policy=dmarc[1],
        dmarc_reason=dmarc_reason,
    )
    read = parse_authentication_results(header_value("esp.test", verdicts))
    assert read.authserv_id == "esp.test"
    expected_dkim = [(r, _flat(why), {"header.d": d, "header.s": s}) for r, d, s, why in dkim] or [
        ("none", None, {})
    ]
    assert [(m.result, m.reason, m.properties) for m in read.of("dkim")] == expected_dkim
    (spf_read,) = read.of("spf")
    assert (spf_read.result, spf_read.reason) == (spf[0], _flat(spf_reason))
    assert spf_read.properties == {f"smtp.{spf[1]}": spf[2]}
    (dmarc_read,) = read.of("dmarc")
    assert (dmarc_read.result, dmarc_read.reason) == (dmarc[0], _flat(dmarc_reason))
    assert dmarc_read.tag("p") == dmarc[1]
    assert dmarc_read.properties == ({"header.from": from_domain} if from_domain else {})
