"""Issue 15, runtime controls: what a change may set, checked without sockets.

A wrong change names every wrong key (with the closest allowed one) and changes nothing; a right
one changes exactly what it names and says so line by line; the outcome rates keep the scenario
file's rule (each in [0, 1], summing to 1).
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from simulator.esp.controls import (
    CONTROL_KEYS,
    DEFAULT_REPLIES,
    DELIVERY_KEYS,
    RUNTIME_STAGES,
    ControlError,
    Controls,
    apply_change,
)
from simulator.esp.scenario import OUTCOMES, load_scenario


@pytest.fixture(scope="module")
def start() -> Controls:
    return Controls.of(load_scenario("smoke"))


def test_a_run_starts_with_no_runtime_fault_and_the_scenarios_rates(start: Controls) -> None:
    document = start.document()
    assert document["outcomes"] == dict(load_scenario("smoke").outcomes)
    assert {stage: f["rate"] for stage, f in document["faults"].items()} == dict.fromkeys(
        RUNTIME_STAGES, 0.0
    )
    assert document["delivery"] == {"paused": False, "receiver_down": False}


def test_a_change_sets_only_what_it_names_and_lists_each_changed_value(start: Controls) -> None:
    new, lines = apply_change(
        start, {"faults": {"rcpt": {"rate": 1}}, "delivery": {"receiver_down": True}}
    )
    assert new.faults["rcpt"].rate == 1.0 and new.faults["rcpt"].reply == DEFAULT_REPLIES["rcpt"]
    assert new.faults["data"] == start.faults["data"] and new.outcomes == start.outcomes
    assert new.receiver_down and not new.paused
    assert lines == ["faults.rcpt.rate: 0.0 -> 1.0", "delivery.receiver_down: False -> True"]


def test_a_change_to_the_current_values_lists_nothing(start: Controls) -> None:
    assert apply_change(start, start.document()) == (start, [])


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        ({"fautls": {}}, "fautls", "did you mean 'faults'?"),
        ({"faults": {"rcp": {"rate": 1}}}, "faults.rcp", "did you mean 'rcpt'?"),
        ({"faults": {"mail": {"rate": 1}}}, "faults.mail", "allowed keys are connect, rcpt, data"),
        ({"faults": {"rcpt": {"rtae": 1}}}, "faults.rcpt.rtae", "did you mean 'rate'?"),
        ({"faults": {"rcpt": {"rate": 1.5}}}, "faults.rcpt.rate", "outside [0.0, 1.0]"),
        ({"faults": {"rcpt": {"rate": "x"}}}, "faults.rcpt.rate", "must be a number"),
        ({"faults": {"data": {"reply": "oops"}}}, "faults.data.reply", "is not an SMTP reply"),
        ({"outcomes": {"delivered": 0.5}}, "outcomes", "rates must sum to 1, they sum to 0.6"),
        ({"outcomes": {"deliverd": 0.1}}, "outcomes.deliverd", "did you mean 'delivered'?"),
        ({"outcomes": {"spam": -1}}, "outcomes.spam", "outside [0.0, 1.0]"),
        ({"outcomes": 1}, "outcomes", "must be a table"),
        ({"delivery": {"paused": "yes"}}, "delivery.paused", "must be true or false"),
        ({"delivery": {"pasued": True}}, "delivery.pasued", "did you mean 'paused'?"),
    ],
)
def test_a_wrong_change_names_the_key_and_what_was_wrong(
    start: Controls, change: dict, key: str, reason: str
) -> None:
    with pytest.raises(ControlError) as caught:
        apply_change(start, change)
    assert [k for k, _ in caught.value.problems] == [key]
    assert reason in caught.value.problems[0][1]
    assert key in str(caught.value)


def test_every_wrong_key_of_a_change_is_named_at_once(start: Controls) -> None:
    with pytest.raises(ControlError) as caught:
        apply_change(start, {"faults": {"rcpt": {"rate": 2, "reply": "x"}}, "nope": 1})
    assert sorted(k for k, _ in caught.value.problems) == [
        "faults.rcpt.rate",
        "faults.rcpt.reply",
        "nope",
    ]


@pytest.mark.parametrize("change", [[1], "faults", None, 3])
def test_a_change_that_is_not_an_object_says_so(start: Controls, change: object) -> None:
    with pytest.raises(ControlError, match="a change is a JSON object"):
        apply_change(start, change)


def test_a_partial_outcome_change_keeps_the_other_rates(start: Controls) -> None:
    new, _ = apply_change(start, {"outcomes": {"delivered": 0.8, "spam": 0.1}})
    assert new.outcomes["hard_bounce"] == start.outcomes["hard_bounce"]
    assert math.isclose(sum(new.outcomes.values()), 1.0)


leaves = st.none() | st.booleans() | st.floats(allow_nan=True) | st.text(max_size=8)
changes = st.dictionaries(
    st.sampled_from([*CONTROL_KEYS, "x"]),
    leaves
    | st.dictionaries(
        st.sampled_from([*RUNTIME_STAGES, *OUTCOMES, *DELIVERY_KEYS, "x"]),
        leaves | st.dictionaries(st.sampled_from(["rate", "reply", "x"]), leaves, max_size=3),
        max_size=4,
    ),
    max_size=3,
)


@given(changes)
@example({"faults": {"rcpt": {"reply": None}}})  # JSON null where a reply goes
def test_any_change_either_is_refused_whole_or_yields_valid_controls(change: object) -> None:
    """Property: nothing half-applied. A refused change raises; an accepted one leaves rates in
    [0, 1] whose outcomes sum to 1, and SMTP replies a fault can send."""
    start = Controls.of(load_scenario("smoke"))
    try:
        new, _ = apply_change(start, change)
    except ControlError as exc:
        assert exc.problems
        return
    assert all(0.0 <= new.outcomes[name] <= 1.0 for name in OUTCOMES)
    assert math.isclose(sum(new.outcomes.values()), 1.0, abs_tol=1e-9)
    assert all(0.0 <= f.rate <= 1.0 and f.reply[:1] in "2345" for f in new.faults.values())


def test_a_runtime_fault_draws_nothing_while_its_rate_is_zero(start: Controls) -> None:
    """With no runtime fault the scenario's seeded fault stream is the one it always was."""
    rng, untouched = random.Random(7), random.Random(7)
    assert start.fault("rcpt", rng) is None
    assert rng.random() == untouched.random()


def test_a_runtime_fault_at_rate_one_answers_with_its_reply_and_says_why(start: Controls) -> None:
    new, _ = apply_change(start, {"faults": {"data": {"rate": 1, "reply": "554 5.7.1 no"}}})
    fault = new.fault("data", random.Random(0))
    assert fault is not None and fault.reply == "554 5.7.1 no" and fault.action == "reply"
    assert "runtime fault rate 1" in fault.why
