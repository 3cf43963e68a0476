"""Issue 16, `provider check --deliverability`: each misconfiguration is flagged by its own check,
and only by it, with what to change; a provider and zone set up right pass every check.

The probe is built and signed as a campaign's message (`build_probe`); where a test needs a
message a campaign would not build (a header removed, a line too long), the campaign's bytes are
edited and then signed, so the signature stays valid and only the check under test can fail.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.protocol.meta import HEADER_NAME, Meta
from reference_impl.sender.deliverability import (
    CHECKS,
    FAIL,
    PASS,
    WARN,
    Finding,
    build_probe,
    check_message,
    parse_zone,
    worst,
)
from reference_impl.sender.deliverability import checks as c
from reference_impl.sender.deliverability.probe import PROBE_LABEL
from reference_impl.sender.dkim import public_der, sign_message
from reference_impl.sender.message import Template
from reference_impl.sender.provider import Provider
from tests.reference_impl.sender.deliverability.conftest import (
    CLIENT_IP,
    DOMAIN,
    SELECTOR,
    Keys,
    make_provider,
    record_value,
    zone_table,
)


def _judge(
    provider: Provider,
    zone: dict,
    edit: Callable[[bytes], bytes] | None = None,
) -> list[Finding]:
    """The findings for the provider's probe; `edit` changes the campaign's bytes before they
    are signed."""
    if edit is None:
        probe = build_probe(provider)
        data, meta_text, public = probe.data, probe.meta_text, probe.public_key
    else:
        meta = Meta("user@example.com", provider.account_id, 1_700_000_000, 0, PROBE_LABEL, -1)
        template = Template(provider, account_id=provider.account_id, label=PROBE_LABEL, variant=0)
        data = sign_message(provider, edit(template.render(meta)))
        meta_text = meta.encode()
        key = provider.dkim_key()
        public = public_der(key) if key is not None else None
    return check_message(
        data,
        meta_text=meta_text,
        zone=parse_zone(zone, "test"),
        mail_from=provider.from_address,
        public_key=public,
    )


def _not_passed(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings if f.verdict != PASS}


def _only(findings: list[Finding], check: str, verdict: str = FAIL) -> Finding:
    """The one finding that did not pass, asserted to be `check` with `verdict`, with advice."""
    flagged = _not_passed(findings)
    assert list(flagged) == [check], flagged
    assert flagged[check].verdict == verdict
    assert flagged[check].advice
    return flagged[check]


def test_a_signing_provider_with_its_records_published_passes_every_check(keys: Keys) -> None:
    findings = _judge(make_provider(keys), zone_table(keys))
    assert [f.check for f in findings] == list(CHECKS)
    assert _not_passed(findings) == {}
    assert worst(findings) == PASS


def test_missing_dkim_record_fails_and_gives_the_record_keygen_printed(keys: Keys) -> None:
    zone = zone_table(keys, {f"{SELECTOR}._domainkey.{DOMAIN}": None})
    finding = _only(_judge(make_provider(keys), zone), c.DKIM)
    assert f"no TXT record at {SELECTOR}._domainkey.{DOMAIN}." in finding.detail
    assert finding.advice == f"publish: {keys.line}"


def test_a_record_with_another_key_fails_and_gives_the_right_record(keys: Keys) -> None:
    zone = zone_table(keys, {f"{SELECTOR}._domainkey.{DOMAIN}": [record_value(keys.other)]})
    finding = _only(_judge(make_provider(keys), zone), c.DKIM)
    assert "holds another key" in finding.detail
    assert finding.advice == f"publish: {keys.line}"


def test_an_unsigned_message_fails_dkim_and_dmarc_falls_back_to_spf(keys: Keys) -> None:
    provider = make_provider(keys, dkim_selector=None, dkim_domain=None, dkim_key_file=None)
    finding = _only(_judge(provider, zone_table(keys)), c.DKIM)
    assert finding.detail == c.DKIM_UNSIGNED
    assert "dkim-keygen" in finding.advice


def test_a_message_changed_after_signing_fails_dkim_though_the_record_matches(keys: Keys) -> None:
    probe = build_probe(make_provider(keys))
    changed = probe.data.replace(b"Hello,", b"Hallo,", 1)
    assert changed != probe.data
    zone = parse_zone(zone_table(keys), "test")
    outcome = c.evaluate_dkim(changed, zone)
    finding = c.check_dkim(outcome, zone, probe.public_key)
    assert finding.verdict == FAIL and "does not verify" in finding.detail
    assert finding.advice == c.DKIM_INVALID_ADVICE


def test_spf_fails_for_an_ip_the_record_does_not_list(keys: Keys) -> None:
    zone = zone_table(keys, {DOMAIN: ["v=spf1 ip4:198.51.100.7 -all"]})
    # DKIM still passes aligned, so DMARC passes: only SPF is flagged.
    finding = _only(_judge(make_provider(keys), zone), c.SPF)
    assert "spf=fail" in finding.detail
    assert f"ip4:{CLIENT_IP}" in finding.advice


def test_spf_softfail_only_warns(keys: Keys) -> None:
    zone = zone_table(keys, {DOMAIN: ["v=spf1 ip4:198.51.100.7 ~all"]})
    finding = _only(_judge(make_provider(keys), zone), c.SPF, WARN)
    assert "spf=softfail" in finding.detail


def test_no_spf_record_fails(keys: Keys) -> None:
    finding = _only(_judge(make_provider(keys), zone_table(keys, {DOMAIN: None})), c.SPF)
    assert "spf=none" in finding.detail


def test_a_single_label_mail_from_domain_is_spf_none_without_a_lookup() -> None:
    """RFC 7208 4.3: check_host() returns none for a name that is not multi-label; before, a
    record published at `localhost` was looked up and passed."""
    zone = parse_zone(
        {"authentication": {"client_ip": CLIENT_IP, "dns": {"localhost": ["v=spf1 +all"]}}}, "t"
    )
    result, why = c.evaluate_spf(zone, "news@localhost")
    assert result == "none" and "multi-label" in why
    finding = c.check_spf(result, why, zone, "news@localhost")
    assert finding.verdict == FAIL and "multi-label" in finding.detail


def test_two_spf_records_are_a_permerror(keys: Keys) -> None:
    zone = zone_table(keys, {DOMAIN: ["v=spf1 -all", f"v=spf1 ip4:{CLIENT_IP} -all"]})
    finding = _only(_judge(make_provider(keys), zone), c.SPF)
    assert "spf=permerror" in finding.detail


def test_spf_follows_include_within_the_zone(keys: Keys) -> None:
    zone = zone_table(
        keys,
        {
            DOMAIN: ["v=spf1 include:_spf.mailer.example -all"],
            "_spf.mailer.example": ["v=spf1 ip4:192.0.2.0/24 -all"],
        },
    )
    assert _not_passed(_judge(make_provider(keys), zone)) == {}


def test_no_dmarc_record_fails(keys: Keys) -> None:
    finding = _only(
        _judge(make_provider(keys), zone_table(keys, {f"_dmarc.{DOMAIN}": None})), c.DMARC
    )
    assert f"_dmarc.{DOMAIN}" in finding.detail


def test_dmarc_p_none_only_warns(keys: Keys) -> None:
    zone = zone_table(keys, {f"_dmarc.{DOMAIN}": ["v=DMARC1; p=none"]})
    finding = _only(_judge(make_provider(keys), zone), c.DMARC, WARN)
    assert "p=none" in finding.detail


def test_dmarc_fails_when_neither_dkim_nor_spf_is_aligned(keys: Keys) -> None:
    """Signed by another organisation's domain, and SPF fails: DKIM passes, DMARC does not."""
    other = "esp-mailer.example"
    zone = zone_table(
        keys,
        {f"{SELECTOR}._domainkey.{other}": [keys.value], DOMAIN: ["v=spf1 -all"]},
    )
    flagged = _not_passed(_judge(make_provider(keys, dkim_domain=other), zone))
    assert set(flagged) == {c.SPF, c.DMARC}
    assert "neither DKIM" in flagged[c.DMARC].detail
    assert f"dkim_domain = {DOMAIN}" in flagged[c.DMARC].advice


@pytest.mark.parametrize(("adkim", "verdict"), [("r", PASS), ("s", FAIL)])
def test_dkim_alignment_of_a_subdomain_follows_adkim(keys: Keys, adkim: str, verdict: str) -> None:
    """d=mail.acme.example aligns with From acme.example when relaxed, not when strict."""
    signer = f"mail.{DOMAIN}"
    zone = zone_table(
        keys,
        {
            f"{SELECTOR}._domainkey.{signer}": [keys.value],
            DOMAIN: ["v=spf1 -all"],
            f"_dmarc.{DOMAIN}": [f"v=DMARC1; p=reject; adkim={adkim}"],
        },
    )
    flagged = _not_passed(_judge(make_provider(keys, dkim_domain=signer), zone))
    assert set(flagged) - {c.SPF} == ({c.DMARC} if verdict == FAIL else set())


def test_relaxed_alignment_uses_the_public_suffix_list() -> None:
    """other.co.uk and acme.co.uk share a public suffix, not an organisation: not aligned."""
    assert c._aligned("mail.acme.co.uk", "acme.co.uk", "r")
    assert not c._aligned("other.co.uk", "acme.co.uk", "r")


def test_dmarc_of_the_organisational_domain_covers_a_subdomain_from(keys: Keys) -> None:
    """No record at _dmarc.news.acme.example: the organisational domain's applies, with sp=."""
    sub = f"news.{DOMAIN}"
    zone = zone_table(
        keys,
        {
            sub: [f"v=spf1 ip4:{CLIENT_IP} -all"],
            f"_dmarc.{DOMAIN}": ["v=DMARC1; p=reject; sp=none"],
        },
    )
    finding = _only(_judge(make_provider(keys, from_address=f"a@{sub}"), zone), c.DMARC, WARN)
    assert f"_dmarc.{DOMAIN}" in finding.detail


def test_an_invalid_dmarc_policy_fails(keys: Keys) -> None:
    zone = zone_table(keys, {f"_dmarc.{DOMAIN}": ["v=DMARC1; p=block"]})
    finding = _only(_judge(make_provider(keys), zone), c.DMARC)
    assert "invalid" in finding.detail


@pytest.mark.parametrize("from_sub", [False, True])
def test_an_invalid_sp_leaves_no_policy_and_fails_naming_sp(keys: Keys, from_sub: bool) -> None:
    """RFC 7489 6.6.3: an sp= that is not valid leaves no policy, for the organisational domain
    and a subdomain From alike. Before, the subdomain's finding blamed p=."""
    sub = f"news.{DOMAIN}"
    zone = zone_table(
        keys,
        {sub: [f"v=spf1 ip4:{CLIENT_IP} -all"], f"_dmarc.{DOMAIN}": ["v=DMARC1; p=reject; sp=x"]},
    )
    provider = make_provider(keys, from_address=f"a@{sub}" if from_sub else f"a@{DOMAIN}")
    finding = _only(_judge(provider, zone), c.DMARC)
    assert "sp='x' is not none" in finding.detail


@pytest.mark.parametrize(
    ("rua", "verdict"),
    [("mailto:d@acme.example", WARN), ("https://r.example/d!10m", WARN), ("x", FAIL)],
)
def test_an_invalid_policy_with_a_reporting_uri_reads_as_p_none(
    keys: Keys, rua: str, verdict: str
) -> None:
    """RFC 7489 6.6.3: a record without a valid p= but with a valid rua= URI is read as
    `v=DMARC1; p=none` (a WARN that still names what is wrong); without one, no policy (FAIL).
    Before, every invalid record FAILed."""
    zone = zone_table(keys, {f"_dmarc.{DOMAIN}": [f"v=DMARC1; p=block; rua={rua}"]})
    finding = _only(_judge(make_provider(keys), zone), c.DMARC, verdict)
    assert "p='block' is not none" in finding.detail
    assert ("read as p=none" in finding.detail) == (verdict == WARN)


@pytest.mark.parametrize(
    ("record", "found"),
    [
        ("v=dmarc1; p=reject", False),
        ("v=DMARC10; p=reject", False),
        ("p=reject; v=DMARC1", False),
        ("v = DMARC1 ; p=reject", True),
        ("V=DMARC1; p=reject", True),
    ],
)
def test_a_dmarc_record_starts_with_the_exact_version(keys: Keys, record: str, found: bool) -> None:
    """RFC 7489 6.4: `"v" *WSP "=" *WSP "DMARC1"` first, the value case-sensitive; any other
    record at the name is discarded (6.6.3), as if there were none."""
    findings = _judge(make_provider(keys), zone_table(keys, {f"_dmarc.{DOMAIN}": [record]}))
    assert _not_passed(findings) == {} if found else list(_not_passed(findings)) == [c.DMARC]


def test_an_http_unsubscribe_link_fails(keys: Keys) -> None:
    provider = make_provider(keys, preference_center_url="http://acme.example/u?e={email}")
    finding = _only(_judge(provider, zone_table(keys)), c.UNSUBSCRIBE)
    assert "http://" in finding.detail and "https" in finding.advice


def test_no_list_unsubscribe_fails_both_unsubscribe_checks(keys: Keys) -> None:
    provider = make_provider(keys, preference_center="none", preference_center_url=None)
    flagged = _not_passed(_judge(provider, zone_table(keys)))
    assert set(flagged) == {c.UNSUBSCRIBE, c.ONE_CLICK_POST}
    assert flagged[c.UNSUBSCRIBE].detail == c.UNSUBSCRIBE_MISSING


def test_a_missing_list_unsubscribe_post_fails(keys: Keys) -> None:
    def drop(data: bytes) -> bytes:
        return data.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b"")

    finding = _only(_judge(make_provider(keys), zone_table(keys), drop), c.ONE_CLICK_POST)
    assert finding.detail == c.ONE_CLICK_MISSING


def test_a_wrong_list_unsubscribe_post_value_fails() -> None:
    finding = c.check_one_click("List-Unsubscribe=Yes")
    assert finding.verdict == FAIL and "List-Unsubscribe=Yes" in finding.detail


@pytest.mark.parametrize("header", [b"Message-ID", b"Date"])
def test_a_missing_message_id_or_date_fails(keys: Keys, header: bytes) -> None:
    def drop(data: bytes) -> bytes:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = [line for line in head.split(b"\r\n") if not line.startswith(header + b":")]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    finding = _only(_judge(make_provider(keys), zone_table(keys), drop), c.IDS)
    assert finding.detail == f"missing {header.decode()}"


def test_a_line_over_998_characters_fails(keys: Keys) -> None:
    def long_body_line(data: bytes) -> bytes:
        return data.replace(b"Hello,", b"Hello," + b"x" * 1000, 1)

    finding = _only(_judge(make_provider(keys), zone_table(keys), long_body_line), c.LINES)
    assert "line(s) over 998" in finding.detail


@pytest.mark.parametrize("where", ["after the name", "after the value"])
def test_a_folded_meta_fails_the_byte_exact_check(keys: Keys, where: str) -> None:
    """Folded before its value, or continued after it: either way not the line that was sent."""
    name = f"{HEADER_NAME}:".encode()

    def fold(data: bytes) -> bytes:
        if where == "after the name":
            return data.replace(name + b" ", name + b"\r\n ", 1)
        start = data.index(name)
        end = data.index(b"\r\n", start)
        return data[:end] + b"\r\n more" + data[end:]

    finding = _only(_judge(make_provider(keys), zone_table(keys), fold), c.META)
    assert HEADER_NAME in finding.detail


def test_a_missing_meta_fails() -> None:
    finding = c.check_meta(b"From: a@b.example\r\n\r\nbody\r\n", "x|1|2|0|l|-1")
    assert (finding.verdict, finding.detail) == (FAIL, c.META_MISSING)


@given(
    scheme=st.sampled_from(["http", "https", "HTTPS", "mailto", "ftp"]),
    rest=st.from_regex(r"[a-z]{1,10}\.example/[a-z0-9?=&%]{0,20}", fullmatch=True),
)
def test_list_unsubscribe_passes_exactly_when_it_has_an_https_uri(scheme: str, rest: str) -> None:
    sep = ":" if scheme == "mailto" else "://"
    finding = c.check_list_unsubscribe(f"<{scheme}{sep}{rest}>")
    assert (finding.verdict == PASS) == (scheme.lower() == "https")
    assert finding.verdict in (PASS, FAIL)
