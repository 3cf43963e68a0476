"""Outcome decisions: pure, reproducible, SES-style rules, rates honoured."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from simulator.esp import replies
from simulator.esp.faults import StageFaults, coded_fault, reply_for, stage_faults
from simulator.esp.outcomes import (
    DROP_PART,
    Decider,
    address_matches,
    draws,
    rng_for,
    strip_label,
)
from simulator.esp.scenario import STAGES, FaultRule, Scenario, load_scenario, parse_scenario

EMAILS = st.emails().map(str)


@given(key=st.text(max_size=50), rcpt=EMAILS, seed=st.integers(0, 2**32))
def test_decisions_are_reproducible_from_scenario_seed_and_mail(
    key: str, rcpt: str, seed: int
) -> None:
    scenario = load_scenario("partial-failure")
    assert Decider(scenario, seed).decide(key, rcpt) == Decider(scenario, seed).decide(key, rcpt)


def test_decisions_do_not_depend_on_the_order_of_mail() -> None:
    decider = Decider(load_scenario("mixed"), 1)
    pairs = [(f"meta:{i}", f"u{i}@x.com") for i in range(50)]
    forward = [decider.decide(*pair) for pair in pairs]
    backward = [decider.decide(*pair) for pair in reversed(pairs)]
    assert forward == list(reversed(backward))


def test_rates_are_honoured_over_many_recipients() -> None:
    scenario = load_scenario("mixed")
    decider = Decider(scenario, 0)
    counts = Counter(decider.decide("meta:x", f"u{i}@example.com").outcome for i in range(4000))
    for outcome, rate in scenario.outcomes.items():
        assert abs(counts[outcome] / 4000 - rate) < 0.02, (outcome, counts)


def test_failures_get_rfc3463_descriptions_with_faker_detail() -> None:
    decider = Decider(load_scenario("ses-simulator"), 0)
    decision = decider.decide("meta:x", "bounce@example.com")
    assert decision.outcome == "hard_bounce"
    assert decision.description.startswith(f"{replies.USER_UNKNOWN} (reported by mx.")
    mixed = Decider(load_scenario("batch-limit"), 0)
    texts = {mixed.decide("k", f"u{i}@x").description.split(" (")[0] for i in range(200)}
    assert texts - set(replies.DELIVERED_REPLIES) <= set(replies.HARD_BOUNCE_REPLIES)


def test_ses_rules_ignore_label_case_and_domain() -> None:
    assert strip_label("Bounce+Campaign-7@Example.COM") == "bounce@example.com"
    assert address_matches("bounce@", "bounce+x@any.domain")
    assert not address_matches("bounce@", "notbounce@any.domain")
    assert address_matches("*@blocked.example", "who+ever@blocked.example")


def test_coded_addresses_name_stage_code_and_status_badsmtp_style() -> None:
    fault = coded_fault("rcpt", "rcpt550_5.1.1@example.com")
    assert fault is not None and fault.reply == replies.USER_UNKNOWN
    assert coded_fault("data", "rcpt550@example.com") is None
    assert coded_fault("data", "data451+x@example.com").reply == reply_for("451")
    assert coded_fault("rcpt", "rcptstall@x").action == "stall"
    assert coded_fault("data", "datadrop@x").action == "drop"
    assert coded_fault("rcpt", "someone@x") is None


def test_rate_faults_fire_at_their_rate_from_a_seeded_stream() -> None:
    rule = FaultRule("rcpt", "reply", replies.MAILBOX_FULL, 0.25)
    faults = StageFaults.of((rule,), "rcpt")
    rng = rng_for(1, "faults")
    fired = sum(faults.pick(("a@x",), rng) is not None for _ in range(4000))
    assert abs(fired / 4000 - 0.25) < 0.03
    first, second = rng_for(1, "faults"), rng_for(1, "faults")
    assert [faults.pick((), first) for _ in range(50)] == [
        faults.pick((), second) for _ in range(50)
    ]


def test_coded_faults_can_be_turned_off() -> None:
    assert StageFaults.of((), "rcpt", coded=False).pick(("rcpt550@x",)) is None


def _with_drops(drop_rate: float, rules: list[dict] | None = None) -> Scenario:
    data = {
        "outcomes": {"delivered": 0.5, "hard_bounce": 0.5},
        "callbacks": {"drop_rate": drop_rate},
    }
    if rules:
        data["rules"] = rules
    return parse_scenario(data, "drops.toml")


@given(key=st.text(max_size=50), rcpt=EMAILS, seed=st.integers(0, 2**32))
def test_drops_are_reproducible_from_scenario_seed_and_mail(key: str, rcpt: str, seed: int) -> None:
    """callbacks.drop_rate: the same scenario, seed and mail drop the same events."""
    scenario = _with_drops(0.5)
    assert Decider(scenario, seed).decide(key, rcpt).dropped == (
        Decider(scenario, seed).decide(key, rcpt).dropped
    )


def test_drop_rate_is_honoured_and_leaves_every_other_decision_unchanged() -> None:
    """Dropping draws from its own hash: adding it changes no outcome, description or mutation."""
    dropping, plain = Decider(_with_drops(0.3), 4), Decider(_with_drops(0.0), 4)
    pairs = [(f"meta:{i}", f"u{i}@example.com") for i in range(4000)]
    dropped = 0
    for key, rcpt in pairs:
        with_drop, without = dropping.decide(key, rcpt), plain.decide(key, rcpt)
        assert replace(with_drop, dropped=False) == without
        assert not without.dropped
        dropped += with_drop.dropped
    assert abs(dropped / 4000 - 0.3) < 0.03
    assert sum(Decider(_with_drops(1.0), 4).decide(*pair).dropped for pair in pairs[:200]) == 200


def test_an_address_rule_drop_rate_overrides_the_scenario_wide_rate() -> None:
    """rules[].drop_rate = 1.0 drops that address; other addresses use callbacks.drop_rate."""
    decider = Decider(
        _with_drops(0.0, [{"match": "ooto@", "outcome": "soft_bounce", "drop_rate": 1.0}]), 0
    )
    assert all(decider.decide(f"meta:{i}", "ooto+x@any.test").dropped for i in range(100))
    assert not any(decider.decide(f"meta:{i}", "other@any.test").dropped for i in range(100))
    keeping = Decider(
        _with_drops(1.0, [{"match": "ooto@", "outcome": "soft_bounce", "drop_rate": 0.0}]), 0
    )
    assert not any(keeping.decide(f"meta:{i}", "ooto@any.test").dropped for i in range(100))


@given(key=st.text(max_size=80), rcpt=EMAILS, seed=st.integers(0, 2**32))
def test_draws_are_the_digest_words_over_two_to_the_64(key: str, rcpt: str, seed: int) -> None:
    """Reproducible outcomes: the fast draws give exactly the floats int(word) / 2**64 gives."""
    material = "\x00".join((str(seed), key, rcpt)).encode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(material, digest_size=48).digest()
    words = [int.from_bytes(digest[i : i + 8], "big") for i in range(0, 48, 8)]
    assert draws(seed, key, rcpt) == [word / 2**64 for word in words]
    assert (
        draws(seed, key, rcpt, DROP_PART, count=1)[0]
        == int.from_bytes(hashlib.blake2b(material + b"\x00drop", digest_size=8).digest(), "big")
        / 2**64
    )


def test_stage_faults_list_only_the_stages_a_scenario_can_fault() -> None:
    """Faults: a stage is hooked only if coded addresses or a rule can fault it."""
    assert set(stage_faults(load_scenario("mixed").smtp.faults, coded=True)) == {
        "mail",
        "rcpt",
        "data",
    }
    assert stage_faults((), coded=False) == {}
    smtp_faults = load_scenario("smtp-faults").smtp.faults
    assert set(stage_faults(smtp_faults, coded=True)) == set(STAGES)
    auth = StageFaults.of(smtp_faults, "auth", coded=True)
    assert not auth.coded and auth.matched and auth.rated
    assert auth.pick(("nobody",)) is not None, "matched on the login name"
