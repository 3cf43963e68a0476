"""Scenario files: every shipped one loads; bad ones fail naming file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.scenario import (
    MAILGUN_SCHEDULE,
    ScenarioError,
    load_scenario,
    parse_scenario,
    shipped_scenarios,
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
    names = {path.stem for path in shipped_scenarios()}
    assert names >= REQUIRED
    for path in shipped_scenarios():
        scenario = load_scenario(path)
        assert abs(sum(scenario.outcomes.values()) - 1.0) < 1e-9, path


def test_load_by_bare_name_finds_the_shipped_file() -> None:
    assert load_scenario("smoke").name == "smoke"


def test_defaults_use_mailgun_retry_schedule_and_1000_batches() -> None:
    scenario = parse_scenario({"outcomes": {"delivered": 1.0}}, "x.toml")
    assert scenario.callbacks.retry_schedule == MAILGUN_SCHEDULE
    assert scenario.callbacks.batch_sizes == (1000,)


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
