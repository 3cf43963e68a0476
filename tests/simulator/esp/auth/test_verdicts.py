"""Issue 16: the fake ESP's DKIM, SPF and DMARC verdicts (pure; the zone stands in for DNS)."""

from __future__ import annotations

import pytest

from simulator.esp.auth import Zone, authenticate, header_value
from simulator.esp.auth.dkim_verdict import BODY_CHANGED, verify_dkim
from simulator.esp.auth.dmarc import (
    aligned,
    evaluate_dmarc,
    organizational_domain,
    parse_record,
)
from simulator.esp.auth.message import read_facts
from simulator.esp.auth.results import FAIL, NEUTRAL, NONE, PASS, PERMERROR, SOFTFAIL
from simulator.esp.auth.spf_verdict import HELO, MAILFROM, check_spf
from tests.simulator.esp.auth.conftest import SELECTOR, Signer, message

IP = "192.0.2.10"
OTHER_IP = "198.51.100.20"
SPF = {
    "example.com": ["v=spf1 ip4:192.0.2.0/24 -all", "google-site-verification=abc"],
    "soft.example": ["v=spf1 ~all"],
    "neutral.example": ["v=spf1 ?all"],
    "inc.example": ["v=spf1 include:example.com -all"],
    "broken.example": ["v=spf1 moo -all"],
    "twice.example": ["v=spf1 -all", "v=spf1 +all"],
    "mail.example.com": ["v=spf1 ip4:192.0.2.10 -all"],
}


def zone_with(signer: Signer, domain: str = "example.com", **extra: list[str]) -> Zone:
    return Zone.of({f"{SELECTOR}._domainkey.{domain}": [signer.record], **SPF, **extra})


# --- DKIM ---------------------------------------------------------------------------------------


def test_dkim_a_signature_verified_against_the_zone_passes(signer: Signer) -> None:
    (result,) = verify_dkim(signer.sign(message(), "example.com"), zone_with(signer))
    assert (result.result, result.domain, result.selector) == (PASS, "example.com", SELECTOR)


def test_dkim_a_changed_body_fails(signer: Signer) -> None:
    raw = signer.sign(message(), "example.com").replace(b"Hello.", b"Hellp.")
    (result,) = verify_dkim(raw, zone_with(signer))
    assert (result.result, result.reason) == (FAIL, BODY_CHANGED)


def test_dkim_a_changed_signed_header_fails(signer: Signer) -> None:
    raw = signer.sign(message(), "example.com").replace(b"|label|", b"|lab3l|")
    (result,) = verify_dkim(raw, zone_with(signer))
    assert result.result == FAIL


def test_dkim_no_signature_is_none(signer: Signer) -> None:
    assert verify_dkim(message(), zone_with(signer)) == ()
    assert authenticate(message(), zone_with(signer), IP, "a@example.com", "h").dkim == NONE


def test_dkim_no_key_record_is_permerror_naming_it(signer: Signer) -> None:
    (result,) = verify_dkim(signer.sign(message(), "example.com"), Zone())
    assert result.result == PERMERROR and "sel1._domainkey.example.com" in (result.reason or "")


def test_dkim_another_key_in_the_record_fails(signer: Signer) -> None:
    other = Signer()
    zone = Zone.of({f"{SELECTOR}._domainkey.example.com": [other.record]})
    (result,) = verify_dkim(signer.sign(message(), "example.com"), zone)
    assert result.result == FAIL


def test_dkim_a_malformed_signature_is_permerror(signer: Signer) -> None:
    raw = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com\r\n" + message()
    (result,) = verify_dkim(raw, zone_with(signer))
    assert result.result == PERMERROR


# --- SPF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "sender", "expected"),
    [
        (IP, "news@example.com", PASS),
        (OTHER_IP, "news@example.com", FAIL),
        (OTHER_IP, "news@soft.example", SOFTFAIL),
        (OTHER_IP, "news@neutral.example", NEUTRAL),
        (IP, "news@inc.example", PASS),
        (OTHER_IP, "news@inc.example", FAIL),
        (IP, "news@unpublished.example", NONE),
        (IP, "news@broken.example", PERMERROR),
        (IP, "news@twice.example", PERMERROR),
    ],
)
def test_spf_result_for_the_mail_from_domain_and_client_ip(
    ip: str, sender: str, expected: str
) -> None:
    verdict = check_spf(Zone.of(SPF), ip, sender, "ignored.example")
    assert verdict.result == expected
    assert (verdict.scope, verdict.domain) == (MAILFROM, sender.split("@")[1])


def test_spf_a_null_sender_checks_the_helo_name() -> None:
    verdict = check_spf(Zone.of(SPF), IP, "", "mail.example.com")
    assert (verdict.result, verdict.scope, verdict.domain) == (PASS, HELO, "mail.example.com")


@pytest.mark.parametrize("helo", ["MAIL.example.com", "mail.example.com."])
def test_spf_a_null_senders_helo_is_checked_as_the_domain_it_names(helo: str) -> None:
    """DNS names ignore case and the root's dot; before, pyspf found no record for a HELO
    written with the dot and said none while the header named mail.example.com."""
    verdict = check_spf(Zone.of(SPF), IP, "", helo)
    assert (verdict.result, verdict.domain, verdict.identity) == (PASS, "mail.example.com", helo)


@pytest.mark.parametrize(("sender", "helo"), [("", "localhost"), ("news@localhost", "h.example")])
def test_spf_a_single_label_name_is_none_without_a_lookup(sender: str, helo: str) -> None:
    """RFC 7208 4.3: check_host() returns none for a name that is not multi-label, such as
    the `localhost` a misconfigured host says in HELO; before, its record was looked up."""
    zone = Zone.of({"localhost": ["v=spf1 +all"]})
    verdict = check_spf(zone, IP, sender, helo)
    assert (verdict.result, verdict.domain) == (NONE, "localhost")
    assert "multi-label" in (verdict.reason or "")


def test_spf_mechanisms_needing_a_or_mx_records_find_nothing_in_a_txt_zone() -> None:
    """The zone is TXT only: `a`/`mx` are void lookups, never a network query."""
    zone = Zone.of({"amx.example": ["v=spf1 a mx -all"]})
    assert check_spf(zone, IP, "x@amx.example", "h").result == FAIL


# --- DMARC --------------------------------------------------------------------------------------


def test_dmarc_organizational_domain_uses_the_public_suffix_list() -> None:
    assert organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert organizational_domain("mail.platform.example") == "platform.example"
    assert organizational_domain("Example.COM.") == "example.com"


def test_dmarc_relaxed_alignment_shares_the_organizational_domain_strict_needs_equality() -> None:
    assert aligned("mail.example.com", "example.com", "r")
    assert not aligned("mail.example.com", "example.com", "s")
    assert aligned("example.com", "example.com", "s")
    assert not aligned("example.net", "example.com", "r")
    assert not aligned(None, "example.com", "r")


def test_dmarc_record_tags_and_defaults() -> None:
    record = parse_record("v=DMARC1; p=reject; adkim=s; rua=mailto:x@example.com")
    assert record is not None
    assert (record.p, record.sp, record.adkim, record.aspf) == ("reject", "reject", "s", "r")
    assert parse_record("v=DMARC1; p=bogus") is None
    assert parse_record("v=DMARC1; rua=not-a-uri") is None


@pytest.mark.parametrize(
    "record",
    [
        "v=DMARC1; rua=mailto:d@example.com",
        "v=DMARC1; p=bogus; rua=mailto:d@example.com!10m",
        "v=DMARC1; p=reject; sp=x; rua=bad, https://r.example/dmarc",
    ],
)
def test_dmarc_an_invalid_policy_with_a_reporting_uri_reads_as_p_none(record: str) -> None:
    """RFC 7489 6.6.3: without a valid p= (or with an invalid sp=), a record whose rua= holds
    a valid URI is read as `v=DMARC1; p=none`. Before, it was permerror."""
    parsed = parse_record(record)
    assert parsed is not None and (parsed.p, parsed.sp, parsed.adkim) == ("none", "none", "r")


def test_dmarc_an_invalid_sp_leaves_no_policy() -> None:
    """RFC 7489 6.6.3: an sp= that is not valid makes the record unusable, not p= for
    subdomains; before, sp fell back to p and a subdomain From passed under p=reject."""
    assert parse_record("v=DMARC1; p=reject; sp=bogus") is None
    zone = Zone.of({"_dmarc.example.com": ["v=DMARC1; p=reject; sp=bogus"]})
    verdict = evaluate_dmarc(zone, "news.example.com", None, ["example.com"], FAIL, None)
    assert verdict.result == PERMERROR


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
def test_dmarc_a_record_starts_with_the_exact_version(record: str, found: bool) -> None:
    """RFC 7489 6.4: `"v" *WSP "=" *WSP "DMARC1"` first, the value case-sensitive (%x44 ...);
    6.6.3 discards other records. Before, `v=dmarc1` was taken for a record."""
    zone = Zone.of({"_dmarc.example.com": [record]})
    verdict = evaluate_dmarc(zone, "example.com", None, ["example.com"], FAIL, None)
    assert verdict.result == (PASS if found else NONE)


DMARC = {"_dmarc.example.com": ["v=DMARC1; p=reject; sp=quarantine"]}


def test_dmarc_passes_with_an_aligned_dkim_pass_alone() -> None:
    verdict = evaluate_dmarc(Zone.of(DMARC), "example.com", None, ["example.com"], FAIL, "x.net")
    assert (verdict.result, verdict.policy, verdict.aligned_dkim) == (PASS, "reject", "example.com")


def test_dmarc_passes_with_an_aligned_spf_pass_alone() -> None:
    verdict = evaluate_dmarc(Zone.of(DMARC), "example.com", None, [], PASS, "bounce.example.com")
    assert verdict.result == PASS


def test_dmarc_fails_when_passes_are_not_aligned() -> None:
    verdict = evaluate_dmarc(Zone.of(DMARC), "example.com", None, ["esp.example"], PASS, "esp.net")
    assert verdict.result == FAIL and "esp.example" in (verdict.reason or "")


def test_dmarc_strict_alignment_refuses_a_subdomain_that_relaxed_accepts() -> None:
    strict = {"_dmarc.example.com": ["v=DMARC1; p=reject; adkim=s; aspf=s"]}
    passes = ["mail.example.com"]
    assert evaluate_dmarc(Zone.of(DMARC), "example.com", None, passes, FAIL, None).result == PASS
    assert evaluate_dmarc(Zone.of(strict), "example.com", None, passes, FAIL, None).result == FAIL


def test_dmarc_a_subdomain_uses_the_organizational_record_and_its_sp() -> None:
    verdict = evaluate_dmarc(Zone.of(DMARC), "news.example.com", None, ["example.com"], FAIL, None)
    assert (verdict.result, verdict.policy) == (PASS, "quarantine")


def test_dmarc_without_a_record_is_none_and_with_a_broken_one_permerror() -> None:
    assert evaluate_dmarc(Zone(), "example.com", None, ["example.com"], PASS, None).result == NONE
    broken = Zone.of({"_dmarc.example.com": ["v=DMARC1; p=maybe"]})
    assert evaluate_dmarc(broken, "example.com", None, [], PASS, None).result == PERMERROR


def test_dmarc_a_message_without_one_from_domain_is_permerror(signer: Signer) -> None:
    raw = message().replace(b"From: News <news@example.com>\r\n", b"")
    verdicts = authenticate(raw, zone_with(signer, **DMARC), IP, "news@example.com", "h")
    assert verdicts.dmarc == PERMERROR and verdicts.from_domain is None
    two = message("a@example.com, b@example.net")
    assert read_facts(two).from_domain is None


# --- together, and the header -------------------------------------------------------------------


def test_the_verdicts_and_their_authentication_results_header(signer: Signer) -> None:
    raw = signer.sign(message(), "example.com")
    verdicts = authenticate(raw, zone_with(signer, **DMARC), IP, "news@example.com", "h")
    assert verdicts.as_dict() == {
        "dkim": PASS,
        "spf": PASS,
        "dmarc": PASS,
        "dkim_domain": "example.com",
        "spf_domain": "example.com",
        "from_domain": "example.com",
    }
    assert header_value("esp.test", verdicts) == (
        "esp.test; dkim=pass header.d=example.com header.s=sel1;"
        " spf=pass smtp.mailfrom=news@example.com;"
        " dmarc=pass (p=reject) header.from=example.com"
    )


@pytest.mark.parametrize(
    ("sender", "helo", "written"),
    [
        ("", "[192.0.2.10]", 'smtp.helo="[192.0.2.10]"'),
        ('"john doe"@example.com', "h.example", 'smtp.mailfrom="\\"john doe\\"@example.com"'),
        ("news@example.com", "h.example", "smtp.mailfrom=news@example.com"),
        ("", "mail.example.com", "smtp.helo=mail.example.com"),
    ],
)
def test_the_header_quotes_a_property_value_rfc_8601_does_not_allow_bare(
    sender: str, helo: str, written: str
) -> None:
    """RFC 8601 2.2: a pvalue is an address, a domain name or a token, else a quoted-string;
    before, an address-literal HELO was written bare (`[` and `]` are not in a token)."""
    verdicts = authenticate(message(), Zone.of(SPF), IP, sender, helo)
    assert f"spf={verdicts.spf} " in header_value("esp.test", verdicts)
    assert header_value("esp.test", verdicts).split("; ")[2].endswith(written)


def test_the_header_quotes_reasons_on_one_line(signer: Signer) -> None:
    verdicts = authenticate(message(), Zone.of(SPF), OTHER_IP, "news@example.com", "h")
    value = header_value("esp.test", verdicts)
    assert "\n" not in value and 'spf=fail reason="SPF fail - not authorized"' in value
    assert "dkim=none;" in value and "dmarc=none" in value
