"""The platform side's reading of RFC 8601 `Authentication-Results` (what a receiving server,
such as the fake ESP with an `[authentication]` scenario, says it verified), and the findings of
`--deliverability --esp` drawn from it."""

from __future__ import annotations

import pytest

from reference_impl.errors import PlatformError
from reference_impl.sender.deliverability import FAIL, PASS, WARN
from reference_impl.sender.deliverability import checks as c
from reference_impl.sender.deliverability.authres import (
    AuthResultsError,
    parse_authentication_results,
)

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
