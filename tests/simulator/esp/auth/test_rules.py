"""Issue 16: what the verdicts do, the bulk-sender rules and the blocklist (pure)."""

from __future__ import annotations

import ipaddress

import pytest

from simulator.esp import replies
from simulator.esp.auth import Blocklist, Enforcement, Verdicts, judge, judge_mail
from simulator.esp.auth.message import MessageFacts
from simulator.esp.auth.results import FAIL, NONE, PASS, DkimResult
from simulator.esp.auth.rules import (
    BLOCKLISTED,
    BOUNCE,
    OFF,
    ONE_CLICK_UNSUBSCRIBE,
    REFUSE,
    SPAM,
    UNALIGNED,
    UNAUTHENTICATED,
    one_click_problem,
)

LISTS = Blocklist(
    ips=(ipaddress.ip_network("203.0.113.7"), ipaddress.ip_network("198.51.100.0/24")),
    domains=("spammy.example",),
)
GMAIL = Enforcement(unauthenticated=REFUSE, unaligned=REFUSE, unsubscribe=SPAM)
ONE_CLICK_URL = "<mailto:u@example.com>, <https://example.com/u?x=1>"


def facts(
    from_domain: str | None = "example.com",
    unsubscribe: str | None = ONE_CLICK_URL,
    post: str | None = "List-Unsubscribe=One-Click",
    bulk: bool = True,
) -> MessageFacts:
    return MessageFacts(from_domain, None, unsubscribe, post, bulk)


def verdicts(dkim: str = PASS, spf: str = PASS, dmarc: str = PASS, signer: str = "example.com"):
    return Verdicts(
        dkim=dkim,
        dkim_domain=signer,
        signatures=(DkimResult(dkim, signer, "s"),),
        spf=spf,
        spf_domain="example.com",
        spf_scope="mailfrom",
        spf_identity="news@example.com",
        spf_reason=None,
        dmarc=dmarc,
        from_domain="example.com",
        dmarc_reason=None if dmarc == PASS else "not aligned",
    )


def test_blocklist_matches_an_ip_a_network_and_a_domain_with_its_subdomains_only() -> None:
    assert LISTS.ip_listing("203.0.113.7") == "203.0.113.7"
    assert LISTS.ip_listing("198.51.100.99") == "198.51.100.0/24"
    assert LISTS.ip_listing("203.0.113.8") is None
    assert LISTS.ip_listing("::1") is None
    assert LISTS.domain_listing("Spammy.Example") == "spammy.example"
    assert LISTS.domain_listing("mail.spammy.example") == "spammy.example"
    assert LISTS.domain_listing("notspammy.example") is None


def test_at_mail_a_listed_ip_or_envelope_domain_is_refused_with_554_naming_the_listing() -> None:
    by_ip = judge_mail(LISTS, GMAIL, "203.0.113.7", "news@example.com")
    assert by_ip is not None and by_ip.reply.startswith(replies.LISTED_CODE)
    assert "[203.0.113.7]" in by_ip.reply and BLOCKLISTED in by_ip.reply
    by_domain = judge_mail(LISTS, GMAIL, "192.0.2.10", "x@news.spammy.example")
    assert by_domain is not None and "listed: spammy.example" in by_domain.reply
    assert judge_mail(LISTS, GMAIL, "192.0.2.10", "news@example.com") is None


def test_at_mail_nothing_is_refused_when_listings_bounce_instead() -> None:
    bounce = Enforcement(blocklisted=BOUNCE)
    assert judge_mail(LISTS, bounce, "203.0.113.7", "news@example.com") is None
    found = judge(None, facts(), LISTS, bounce, "203.0.113.7", "news@example.com")
    assert found is not None and found.action == BOUNCE
    assert found.description == found.reply


def test_a_listed_from_domain_or_dkim_signer_is_found_at_data() -> None:
    listed_from = judge(None, facts("spammy.example"), LISTS, GMAIL, "192.0.2.10", "a@ok.example")
    assert listed_from is not None and "From domain spammy.example" in listed_from.reply
    signer = verdicts(signer="spammy.example")
    listed_signer = judge(signer, facts(), LISTS, GMAIL, "192.0.2.10", "a@example.com")
    assert listed_signer is not None and "DKIM" in listed_signer.reply


def test_authenticated_aligned_one_click_bulk_mail_fires_no_rule() -> None:
    assert judge(verdicts(), facts(), LISTS, GMAIL, "192.0.2.10", "news@example.com") is None


@pytest.mark.parametrize(("dkim", "spf"), [(PASS, FAIL), (FAIL, PASS), (NONE, PASS)])
def test_one_passing_identifier_is_authenticated(dkim: str, spf: str) -> None:
    assert judge(verdicts(dkim, spf), facts(), LISTS, GMAIL, "192.0.2.10", "a@example.com") is None


def test_neither_dkim_nor_spf_passing_is_refused_as_unauthenticated_550_5_7_26() -> None:
    found = judge(verdicts(FAIL, FAIL, FAIL), facts(), LISTS, GMAIL, "192.0.2.10", "a@x.example")
    assert found is not None and found.rule == UNAUTHENTICATED and found.action == REFUSE
    assert found.reply.startswith(replies.UNAUTHENTICATED_CODE)


@pytest.mark.parametrize("dmarc", [FAIL, NONE])
def test_dmarc_not_passing_is_refused_as_unaligned(dmarc: str) -> None:
    found = judge(verdicts(dmarc=dmarc), facts(), LISTS, GMAIL, "192.0.2.10", "a@example.com")
    assert found is not None and found.rule == UNALIGNED
    assert f"dmarc={dmarc}" in found.reply and found.reply.startswith("550 5.7.26")


@pytest.mark.parametrize(
    ("unsubscribe", "post", "problem"),
    [
        (None, None, replies.NO_LIST_UNSUBSCRIBE),
        ("<http://example.com/u>", "List-Unsubscribe=One-Click", replies.NO_HTTPS_UNSUBSCRIBE),
        ("<mailto:u@example.com>", "List-Unsubscribe=One-Click", replies.NO_HTTPS_UNSUBSCRIBE),
        ("<https://example.com/u>", None, replies.NO_ONE_CLICK_POST),
        ("<https://example.com/u>", "List-Unsubscribe=Yes", replies.NO_ONE_CLICK_POST),
    ],
)
def test_bulk_mail_without_https_one_click_goes_to_spam_naming_the_problem(
    unsubscribe: str | None, post: str | None, problem: str
) -> None:
    message = facts(unsubscribe=unsubscribe, post=post)
    assert one_click_problem(message) == problem
    found = judge(verdicts(), message, LISTS, GMAIL, "192.0.2.10", "a@example.com")
    assert found is not None and (found.rule, found.action) == (ONE_CLICK_UNSUBSCRIBE, SPAM)
    assert found.description == replies.SPAM_FOLDER.format(reason=found.reply.split(" ", 2)[2])
    assert problem in found.description and ONE_CLICK_UNSUBSCRIBE in found.description


def test_mail_that_is_not_bulk_needs_no_one_click() -> None:
    message = facts(unsubscribe=None, post=None, bulk=False)
    assert judge(verdicts(), message, LISTS, GMAIL, "192.0.2.10", "a@example.com") is None


def test_the_strongest_action_wins_and_ties_go_to_the_earlier_rule() -> None:
    mixed = Enforcement(unauthenticated=SPAM, unaligned=REFUSE, unsubscribe=BOUNCE)
    bad = verdicts(FAIL, FAIL, FAIL)
    no_link = facts(unsubscribe=None)
    found = judge(bad, no_link, LISTS, mixed, "192.0.2.10", "a@example.com")
    assert found is not None and (found.rule, found.action) == (UNALIGNED, REFUSE)
    found = judge(bad, no_link, LISTS, GMAIL, "192.0.2.10", "a@example.com")
    assert found is not None and found.rule == UNAUTHENTICATED


def test_off_turns_a_rule_off() -> None:
    off = Enforcement(unauthenticated=OFF, unaligned=OFF, unsubscribe=OFF, blocklisted=OFF)
    bad = verdicts(FAIL, FAIL, FAIL)
    assert judge(bad, facts(unsubscribe=None), LISTS, off, "203.0.113.7", "a@x.example") is None
