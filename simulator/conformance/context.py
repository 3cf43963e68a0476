"""What every check runs with (`Context`) and what it raises (`ConformanceFailure`).

Their own module because both the checks and the stateful machine need them: with them in
`checks.py`, `stateful.py` and `checks.py` imported each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings

from simulator.conformance import strategies as cs
from simulator.conformance.client import CallbackClient, Exchange, SentRequest, StateClient
from simulator.conformance.requirements import BY_ID, Grade, Requirement
from simulator.errors import SimulatorError
from simulator.protocol.difference import Difference, render

PROPERTY_HEALTH_CHECKS = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.function_scoped_fixture,
]


class StateUnavailable(SimulatorError):
    """A check needs the state read API and none was given (`--receiver-state-url`)."""


@dataclass
class Context:
    """What a check runs with: the client, Hypothesis settings and a per-run nonce for state."""

    client: CallbackClient
    settings: settings = field(default_factory=lambda: settings())
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    on_example: Callable[[], None] = lambda: None
    strict: bool = False
    """Apply the project's readings as MUSTs (`--strict`): the model and the grades both."""
    _counter: int = 0

    def property_settings(self) -> settings:
        return settings(
            parent=self.settings,
            deadline=None,
            suppress_health_check=PROPERTY_HEALTH_CHECKS,
        )

    def fresh_email(self, tag: str = "u") -> str:
        """An address no earlier run has used, so a live receiver's old state cannot interfere."""
        self._counter += 1
        return f"cb-{self.nonce}-{tag}{self._counter}@example.com"

    def fresh_message_id(self) -> int:
        return uuid.uuid4().int % (2**62)

    def event(
        self,
        type: str = "hard_bounce",
        *,
        description: str | None = "conformance check",
        email: str | None = None,
        meta_email: str | None = None,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        address = email or self.fresh_email()
        meta = cs.build_meta(
            meta_email or address,
            1568798080,
            1730714617,
            0,
            "wzrk_default",
            self.fresh_message_id() if message_id is None else message_id,
        )
        event: dict[str, Any] = {"type": type, "email": address, "meta": meta}
        if description is not None:
            event["description"] = description
        return event

    def state(self) -> StateClient:
        state = self.client.state
        if state is None:
            raise StateUnavailable(
                "this check reads receiver state; pass --receiver-state-url with the base URL of "
                "a read API like the reference receiver's (/api/profiles/<email>, /api/events)"
            )
        return state


class ConformanceFailure(AssertionError):
    """A receiver broke a requirement; the message is the full report."""

    def __init__(
        self,
        requirement: Requirement,
        case: str,
        differences: list[Difference],
        exchange: Exchange | None = None,
        note: str = "",
        strict: bool = False,
    ) -> None:
        self.requirement = requirement
        self.case = case
        self.differences = differences
        self.exchange = exchange
        self.note = note
        self.strict = strict
        super().__init__(self.report())

    @property
    def grade(self) -> Grade:
        """FAIL, NON-STRICT or INFORMATIONAL: what this unmet requirement means for the run."""
        return self.requirement.grade(False, self.strict)

    @property
    def request(self) -> SentRequest | None:
        return self.exchange.request if self.exchange else None

    def report(self) -> str:
        r = self.requirement
        lines = [
            f"{r.id} [{r.level_for(self.strict).value}] {r.title}: {self.grade.value}",
            f"source: {r.source.describe()}",
            f"the project's reading: PROTOCOL.md section {r.section}"
            f" (bounceback protocol {r.section})",
            f"case: {self.case}",
        ]
        if self.note:
            lines.append(f"expected because: {self.note}")
        if self.exchange is not None:
            lines.append("sent: " + self.exchange.request.summary())
            lines.append("got: " + self.exchange.summary())
        lines.append("differences (field: expected, got):")
        lines.append(render(self.differences))
        return "\n".join(lines)


def fail_if(
    ctx: Context, requirement_id: str, case: str, rows: list[Difference], exchange: Exchange | None
) -> None:
    """Raise the requirement's `ConformanceFailure` when a check found differences."""
    if rows:
        raise ConformanceFailure(BY_ID[requirement_id], case, rows, exchange, strict=ctx.strict)
