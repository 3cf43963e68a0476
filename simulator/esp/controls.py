"""Runtime controls of a running fake ESP, like Mailpit's chaos API: what a change may set. Pure.

A test (or a person at the dashboard) changes how the ESP behaves without restarting it: the
rate and reply of a fault at the SMTP stages the handler always hooks, the outcome rates, and
callback delivery (paused, or the receiver treated as down). `apply_change` checks a change
against the current controls and returns the new ones with a line per changed value; a bad
change raises `ControlError` naming every wrong key, with the closest allowed one, and changes
nothing. The keys' types, ranges and the outcome rates' sum are the scenario file's rules
(`scenario.change_reader`), stated once. The HTTP layer (`web/`) and the thread-safe holder
(`panel.py`) stay outside.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simulator.errors import SimulatorError
from simulator.esp import replies
from simulator.esp.faults import Fault
from simulator.esp.scenario import (
    OUTCOMES,
    Scenario,
    change_reader,
    is_smtp_reply,
    outcome_rates,
)

__all__ = [
    "CONTROL_KEYS",
    "DEFAULT_REPLIES",
    "DELIVERY_KEYS",
    "RUNTIME_STAGES",
    "ControlError",
    "Controls",
    "StageChaos",
    "apply_change",
]

RUNTIME_STAGES = ("connect", "rcpt", "data")
"""The stages a runtime fault can answer: the ones the handler hooks whatever the scenario says
(`on_connect`, `handle_RCPT`, `handle_DATA`), so turning a fault on needs no new hook."""
DEFAULT_REPLIES = {
    "connect": replies.CONNECT_REFUSED,
    "rcpt": replies.MAILBOX_UNAVAILABLE,
    "data": replies.LOCAL_ERROR,
}
CONTROL_KEYS = ("faults", "outcomes", "delivery")
FAULT_KEYS = ("rate", "reply")
DELIVERY_KEYS = ("paused", "receiver_down")
WHY_RUNTIME = "runtime fault rate {rate:g} (control API)"
NOT_AN_OBJECT = "a change is a JSON object with any of the keys {keys}, got {kind}"
NOT_A_REPLY = "{reply!r} is not an SMTP reply ('<code> <text>', e.g. '451 4.3.0 Try later')"
CHANGED = "{key}: {old} -> {new}"


class ControlError(SimulatorError, ValueError):
    """A runtime change is wrong; `problems` lists every (key, reason), and nothing changed."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{key or 'change'}: {reason}" for key, reason in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class StageChaos:
    """A fault answering one stage at a rate, on top of the scenario's own faults."""

    rate: float = 0.0
    reply: str = ""


@dataclass(frozen=True, slots=True)
class Controls:
    """Everything a change may set; a change makes a new one (the handler and the dispatcher
    read whichever they were last given, without locks)."""

    faults: Mapping[str, StageChaos]
    outcomes: Mapping[str, float]
    paused: bool = False
    receiver_down: bool = False

    @classmethod
    def of(cls, scenario: Scenario) -> Controls:
        """The controls a run starts with: no runtime fault, the scenario's outcome rates."""
        faults = {stage: StageChaos(0.0, DEFAULT_REPLIES[stage]) for stage in RUNTIME_STAGES}
        return cls(faults=faults, outcomes=dict(scenario.outcomes))

    def fault(self, stage: str, rng: random.Random) -> Fault | None:
        """The runtime fault answering `stage` this time, if any. The stream is drawn from only
        while the rate is above 0, so with no runtime fault the scenario's draws are unchanged."""
        chaos = self.faults.get(stage)
        if chaos is None or chaos.rate <= 0 or rng.random() >= chaos.rate:
            return None
        return Fault("reply", chaos.reply, why=WHY_RUNTIME.format(rate=chaos.rate))

    def document(self) -> dict[str, Any]:
        """The JSON of `GET /api/chaos`; a `PUT` of (part of) it is a change."""
        return {
            "faults": {
                stage: {"rate": chaos.rate, "reply": chaos.reply}
                for stage, chaos in self.faults.items()
            },
            "outcomes": {name: self.outcomes.get(name, 0.0) for name in OUTCOMES},
            "delivery": {"paused": self.paused, "receiver_down": self.receiver_down},
        }


def _flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def _faults(reader: Any, current: Controls) -> dict[str, StageChaos]:
    faults = dict(current.faults)
    section = reader.sub("faults")
    section.only(*RUNTIME_STAGES)
    for stage in RUNTIME_STAGES:
        if stage not in section.table:
            continue
        stage_reader = section.sub(stage)
        stage_reader.only(*FAULT_KEYS)
        old = faults[stage]
        rate = stage_reader.rate("rate", old.rate)
        reply = stage_reader.string("reply", old.reply)
        # A JSON null comes back as None (`string` reads it as absent), but it was given.
        if reply is None or not is_smtp_reply(reply):
            stage_reader.fail("reply", NOT_A_REPLY.format(reply=reply))
            reply = old.reply
        faults[stage] = StageChaos(rate, reply)
    return faults


def _outcomes(reader: Any, current: Controls) -> dict[str, float]:
    given = reader.table.get("outcomes")
    if not isinstance(given, Mapping):
        reader.sub("outcomes")  # records "must be a table"
        return dict(current.outcomes)
    # A partial change keeps the other rates; the whole set must still sum to 1.
    merged = {**current.outcomes, **given}
    return outcome_rates(change_reader(merged, reader.key("outcomes"), reader.problems))


def apply_change(current: Controls, change: Any) -> tuple[Controls, list[str]]:
    """The controls after `change` (a partial `Controls.document()`) and a line per value that
    changed, e.g. `faults.rcpt.rate: 0 -> 1`. Raises `ControlError` with every problem."""
    if not isinstance(change, Mapping):
        kind = type(change).__name__
        raise ControlError([("", NOT_AN_OBJECT.format(keys=", ".join(CONTROL_KEYS), kind=kind))])
    problems: list[tuple[str, str]] = []
    top = change_reader(dict(change), "", problems)
    top.only(*CONTROL_KEYS)
    faults = _faults(top, current) if "faults" in change else dict(current.faults)
    outcomes = _outcomes(top, current) if "outcomes" in change else dict(current.outcomes)
    paused, down = current.paused, current.receiver_down
    if "delivery" in change:
        delivery = top.sub("delivery")
        delivery.only(*DELIVERY_KEYS)
        paused = delivery.boolean("paused", paused)
        down = delivery.boolean("receiver_down", down)
    if problems:
        raise ControlError(problems)
    new = Controls(faults=faults, outcomes=outcomes, paused=paused, receiver_down=down)
    before, after = _flatten(current.document()), _flatten(new.document())
    lines = [
        CHANGED.format(key=key, old=before[key], new=after[key])
        for key in after
        if after[key] != before[key]
    ]
    return new, lines
