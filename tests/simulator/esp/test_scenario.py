"""Scenario files: every shipped one loads; bad ones fail naming file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.esp.catalog import SCENARIO, VENDOR, shipped
from simulator.esp.scenario import (
    MAILGUN_SCHEDULE,
    ScenarioError,
    load_scenario,
    parse_scenario,
)

REQUIRED = {
    "smoke",
    "mixed",
    "ses-simulator",
    "batch-limit",
    "partial-failure",
    "retry-storm",
    "smtp-faults",
    "bulk-sender-rules",
}


def test_every_required_scenario_is_shipped_and_valid() -> None:
    names = {entry.name for entry in shipped((SCENARIO,))}
    assert names >= REQUIRED
    for name in names:
        scenario = load_scenario(name)
        assert abs(sum(scenario.outcomes.values()) - 1.0) < 1e-9, name


def test_load_by_bare_name_finds_the_shipped_file() -> None:
    assert load_scenario("smoke").name == "smoke"


def test_defaults_use_mailgun_retry_schedule_and_1000_batches() -> None:
    scenario = parse_scenario({"outcomes": {"delivered": 1.0}}, "x.toml")
    assert scenario.callbacks.retry_schedule == MAILGUN_SCHEDULE
    assert scenario.callbacks.batch_sizes == (1000,)


def test_meta_defaults_decode_encoded_words_mangle_nothing_and_drop_nothing() -> None:
    """A well-behaved ESP recovers the meta the platform wrote and reports every event."""
    callbacks = parse_scenario({"outcomes": {"delivered": 1.0}}, "x.toml").callbacks
    assert callbacks.meta_encoded_words == "decode"
    assert callbacks.meta_mangling == "none"
    assert callbacks.drop_rate == 0.0


def test_echo_python_email_and_drop_rates_load_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "vendor.toml"
    path.write_text(
        '[[rules]]\nmatch = "ooto@"\noutcome = "soft_bounce"\ndrop_rate = 1.0\n'
        '[callbacks]\ndrop_rate = 0.25\nmeta_encoded_words = "echo"\n'
    )
    scenario = load_scenario(path)
    assert scenario.callbacks.drop_rate == 0.25
    assert scenario.callbacks.meta_encoded_words == "echo"
    assert scenario.rules[0].drop_rate == 1.0
    mangling = parse_scenario(
        {"outcomes": {"delivered": 1}, "callbacks": {"meta_mangling": "python-email"}}, "m.toml"
    )
    assert mangling.callbacks.meta_mangling == "python-email"


def test_every_certification_vendor_scenario_is_valid() -> None:
    vendors = [entry.name for entry in shipped((VENDOR,))]
    loaded = {name.rsplit("/", 1)[-1]: load_scenario(name) for name in vendors}
    assert loaded["folds-long-metas"].callbacks.meta_mangling == "python-email"
    drops = {rule.match: rule.drop_rate for rule in loaded["drops-events"].rules}
    assert drops == {
        "success@": None,
        "bounce@": None,
        "ooto@": 1.0,
        "complaint@": None,
        "unsubscribe@": 1.0,
    }


def test_address_rules_only_delivers_unmatched() -> None:
    scenario = load_scenario("ses-simulator")
    assert scenario.outcomes["delivered"] == 1.0


@pytest.mark.parametrize(
    ("data", "key", "reason"),
    [
        ({"outcomes": {"delivered": 0.5}}, "outcomes", "sum to 1"),
        ({"outcomes": {"delivered": 1, "bounced": 0}}, "outcomes.bounced", "unknown key"),
        ({"outcomes": {"delivered": 1.5}}, "outcomes.delivered", "outside"),
        ({"outcomes": {"delivered": "all"}}, "outcomes.delivered", "must be a number"),
        ({"outcomes": {"delivered": 1}, "colour": 1}, "colour", "unknown key"),
        (
            {"outcomes": {"delivered": 1}, "rules": [{"match": "x@", "outcome": "lost"}]},
            "rules[0].outcome",
            "is not one of",
        ),
        (
            {"outcomes": {"delivered": 1}, "rules": [{"outcome": "spam"}]},
            "rules[0].match",
            "required",
        ),
        (
            {"outcomes": {"delivered": 1}, "callbacks": {"batch_size": 0}},
            "callbacks.batch_size",
            "positive",
        ),
        (
            {"outcomes": {"delivered": 1}, "callbacks": {"retry_schedule": [1, -1]}},
            "callbacks.retry_schedule",
            ">= 0",
        ),
        (
            {
                "outcomes": {"delivered": 1},
                "callbacks": {"mutations": {"drop_meta": 0.7, "drop_type": 0.7}},
            },
            "callbacks.mutations",
            "at most 1",
        ),
        (
            {
                "outcomes": {"delivered": 1},
                "smtp": {"faults": [{"stage": "lunch", "rate": 1, "reply": "451 4.3.0 Later"}]},
            },
            "smtp.faults[0].stage",
            "is not one of",
        ),
        (
            {
                "outcomes": {"delivered": 1},
                "smtp": {"faults": [{"stage": "rcpt", "rate": 1, "reply": "oops"}]},
            },
            "smtp.faults[0].reply",
            "not an SMTP reply",
        ),
        (
            {
                "outcomes": {"delivered": 1},
                "smtp": {"faults": [{"stage": "connect", "match": "a@", "reply": "554 x"}]},
            },
            "smtp.faults[0].match",
            "before any address",
        ),
        (
            {
                "outcomes": {"delivered": 1},
                "smtp": {"faults": [{"stage": "data", "rate": 1, "action": "stall"}]},
            },
            "smtp.faults[0].seconds",
            "seconds > 0",
        ),
        (
            {"outcomes": {"delivered": 1}, "smtp": {"max_message_size": 10**12}},
            "smtp.max_message_size",
            "outside",
        ),
        (
            {"outcomes": {"delivered": 1}, "callbacks": {"drop_rate": 1.5}},
            "callbacks.drop_rate",
            "outside [0.0, 1.0]",
        ),
        (
            {"outcomes": {"delivered": 1}, "callbacks": {"drop_rate": "half"}},
            "callbacks.drop_rate",
            "must be a number",
        ),
        (
            {
                "rules": [{"match": "ooto@", "outcome": "soft_bounce", "drop_rate": -0.1}],
            },
            "rules[0].drop_rate",
            "outside [0.0, 1.0]",
        ),
        (
            {"outcomes": {"delivered": 1}, "callbacks": {"meta_encoded_words": "raw"}},
            "callbacks.meta_encoded_words",
            "is not one of decode, echo",
        ),
        (
            {"outcomes": {"delivered": 1}, "callbacks": {"meta_mangling": "perl"}},
            "callbacks.meta_mangling",
            "is not one of none, python-email",
        ),
        (
            {
                "outcomes": {"delivered": 1},
                "callbacks": {"meta_mangling": "python-email", "meta_encoded_words": "echo"},
            },
            "callbacks.meta_mangling",
            "cannot be combined with meta_encoded_words = 'echo'",
        ),
    ],
)
def test_bad_scenario_errors_name_file_key_and_reason(data: dict, key: str, reason: str) -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario(data, "scenarios/bad.toml")
    assert error.value.source == "scenarios/bad.toml"
    # One mistake is one problem: a bad value is not reported again as a knock-on effect.
    ((found_key, found_reason),) = error.value.problems
    assert found_key == key
    assert reason in found_reason
    assert "scenarios/bad.toml" in str(error.value) and key in str(error.value)


def test_unreadable_and_invalid_toml_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_scenario(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[outcomes\n")
    with pytest.raises(ScenarioError, match=r"broken\.toml.*not valid TOML"):
        load_scenario(broken)


SEVERAL_PROBLEMS = """
nmae = "typo"

[outcomes]
delivered = 0.9
hard_bouce = 0.1

[smtp]
max_recipients = 0

[[smtp.faults]]
stage = "rcpt"
action = "stal"
rate = 0.5

[callbacks]
batch_size = [100, -1]
retry_schedule = "5m"
meta_manglng = "python-email"
"""


def test_a_scenario_file_reports_every_problem_at_once_with_did_you_mean(tmp_path: Path) -> None:
    """Issue 10: like provider files and plans, one load names every bad key, so one pass fixes
    the file; unknown keys and choices suggest the closest allowed one."""
    bad = tmp_path / "several.toml"
    bad.write_text(SEVERAL_PROBLEMS)
    with pytest.raises(ScenarioError) as error:
        load_scenario(bad)
    problems = dict(error.value.problems)
    assert error.value.keys == [
        "nmae",
        "outcomes.hard_bouce",
        "smtp.max_recipients",
        "smtp.faults[0].action",
        "callbacks.meta_manglng",
        "callbacks.batch_size",
        "callbacks.retry_schedule",
    ]
    assert "did you mean 'name'?" in problems["nmae"]
    assert "did you mean 'hard_bounce'?" in problems["outcomes.hard_bouce"]
    assert "did you mean 'meta_mangling'?" in problems["callbacks.meta_manglng"]
    assert (
        "'stal' is not one of reply, drop, stall, delay; did you mean 'stall'?"
        in (problems["smtp.faults[0].action"])
    )
    assert "-1 is not a positive integer" in problems["callbacks.batch_size"]
    message = str(error.value)
    assert message.startswith(f"scenario {bad} has 7 problems; fix these keys:\n")
    assert all(f"  {key}: " in message for key in problems)


def test_an_unknown_key_suggests_nothing_when_nothing_is_close() -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario({"outcomes": {"delivered": 1}, "zzz": 1}, "x.toml")
    ((key, reason),) = error.value.problems
    assert key == "zzz" and "did you mean" not in reason and "allowed keys are name," in reason


def test_a_typo_in_one_rate_is_not_reported_again_as_a_wrong_sum() -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario({"outcomes": {"delivered": "all"}}, "x.toml")
    assert error.value.keys == ["outcomes.delivered"]


# --- [authentication], [blocklist], [enforcement] (issue 16) -----------------------------------


def test_the_shipped_bulk_sender_rules_scenario_applies_the_gmail_yahoo_rules() -> None:
    scenario = load_scenario("bulk-sender-rules")
    assert scenario.authentication is not None
    assert scenario.authentication.client_ip == "192.0.2.10"
    assert scenario.authentication.zone.txt("_DMARC.Platform.Example.")
    enforcement = scenario.enforcement
    assert (enforcement.unauthenticated, enforcement.unaligned) == ("refuse", "refuse")
    assert (enforcement.unsubscribe, enforcement.blocklisted) == ("spam", "refuse")
    assert scenario.blocklist.domain_listing("spammy.example") == "spammy.example"


def test_authentication_blocklist_and_enforcement_problems_are_all_listed_at_once() -> None:
    data = {
        "outcomes": {"delivered": 1.0},
        "authentication": {
            "client_ip": "192.0.2",
            "hello": "x",
            "dns": {"bad name": ["v=spf1 -all"], "a.example": "v=spf1 -all"},
        },
        "blocklist": {"ips": ["203.0.113.300"], "domain": ["x.example"]},
        "enforcement": {"unauthenticated": "refuze", "unsubscribe": "spam"},
    }
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "auth.toml")
    reasons = dict(caught.value.problems)
    assert "did you mean 'helo'?" in reasons["authentication.hello"]
    assert "not an IP address" in reasons["authentication.client_ip"]
    assert "not a DNS name" in reasons['authentication.dns."bad name"']
    assert "list of TXT records" in reasons['authentication.dns."a.example"']
    assert "not an IP address or network" in reasons["blocklist.ips[0]"]
    assert "did you mean 'domains'?" in reasons["blocklist.domain"]
    assert "did you mean 'refuse'?" in reasons["enforcement.unauthenticated"]
    assert len(caught.value.problems) == 7


def test_authentication_rules_need_the_authentication_table() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(
            {"enforcement": {"unaligned": "spam"}, "outcomes": {"delivered": 1}}, "x.toml"
        )
    (key,) = caught.value.keys
    assert key == "enforcement.unaligned"


def test_a_scenario_without_the_tables_verifies_nothing_and_blocks_nothing() -> None:
    scenario = parse_scenario({"outcomes": {"delivered": 1.0}}, "x.toml")
    assert scenario.authentication is None and not scenario.blocklist


def test_max_connections_is_read_and_range_checked(tmp_path: Path) -> None:
    """The session limit that bounds the ESP's memory (docs/simulator.md, What bounds memory)."""
    assert load_scenario("smoke").smtp.max_connections == 100
    good = tmp_path / "good.toml"
    good.write_text('name = "g"\n[outcomes]\ndelivered = 1.0\n[smtp]\nmax_connections = 7\n')
    assert load_scenario(good).smtp.max_connections == 7
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[outcomes]\ndelivered = 1.0\n[smtp]\nmax_connections = 0\n')
    with pytest.raises(ScenarioError) as error:
        load_scenario(bad)
    assert error.value.keys == ["smtp.max_connections"]
