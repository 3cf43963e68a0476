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
            {"outcomes": {"delivered": 1}, "smtp": {"faults": [{"stage": "lunch", "rate": 1}]}},
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
    assert error.value.key == key
    assert reason in error.value.reason
    assert "scenarios/bad.toml" in str(error.value) and key in str(error.value)


def test_unreadable_and_invalid_toml_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_scenario(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[outcomes\n")
    with pytest.raises(ScenarioError, match=r"broken\.toml.*not valid TOML"):
        load_scenario(broken)
