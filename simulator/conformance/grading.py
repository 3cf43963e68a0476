"""`bounceback conform` without pytest: every requirement against each receiver, one grade each.

The pytest suite (`simulator.conformance.suite`) stays the way for pytest users; the command runs
the same checks directly, so it controls what a person sees (progress, each failure once, no
advice meant for test authors) and keeps the result objects the reports are written from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hypothesis import Verbosity, settings

from simulator.conformance import checks
from simulator.conformance.client import CallbackClient, Exchange
from simulator.conformance.context import ConformanceFailure, Context, StateUnavailable
from simulator.conformance.fuzz import conformance_failures
from simulator.conformance.requirements import Grade, Requirement
from simulator.conformance.seeding import forced_seed
from simulator.conformance.transport import Target

SKIPPED = "SKIPPED"
"""Shown where a grade would be when a check could not run (no state read API given)."""


@dataclass
class Outcome:
    """One requirement against one receiver: its grade and the evidence that decided it."""

    requirement: Requirement
    strict: bool
    grade: Grade | None = None
    failures: list[ConformanceFailure] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None
    """The check crashed (the receiver hung up, say): graded as not met."""
    expected_failure: bool = False
    """Listed in --expected-failures: a failure is expected, a pass makes the list stale."""
    exchange: Exchange | None = None
    """The last request and reply of the check (for a failure, the failing one)."""
    seconds: float = 0.0
    examples: int = 0

    @property
    def shown(self) -> str:
        """The grade as a report shows it (SKIPPED when the check could not run)."""
        return SKIPPED if self.grade is None else self.grade.value

    @property
    def stale(self) -> bool:
        return self.expected_failure and self.grade is Grade.PASS

    @property
    def blocking(self) -> bool:
        """Fails the run: a MUST not met (and not expected), or an expected failure that passed."""
        return (self.grade is Grade.FAIL and not self.expected_failure) or self.stale


@dataclass
class ReceiverResult:
    """The whole catalogue (as selected) against one receiver."""

    label: str
    url: str
    state_url: str | None
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not any(outcome.blocking for outcome in self.outcomes)

    def count(self, shown: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.shown == shown)


@dataclass
class ConformRun:
    """What every report names: version, time, seed, the receivers and their results."""

    version: str
    started_at: datetime
    seed: int
    strict: bool
    profile: str
    requirements: list[Requirement]
    receivers: list[ReceiverResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(receiver.passed for receiver in self.receivers)

    @property
    def started_iso(self) -> str:
        return self.started_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def run_settings(profile: dict[str, Any]) -> settings:
    """The profile's budget, seeded rather than derandomized, and silent: the command reports."""
    values = {k: v for k, v in profile.items() if k not in ("derandomize", "print_blob")}
    return settings(
        **values, derandomize=False, database=None, print_blob=False, verbosity=Verbosity.quiet
    )


def grade_receiver(
    result: ReceiverResult,
    target: Target,
    requirements: Iterable[Requirement],
    *,
    base: settings,
    seed: int,
    strict: bool,
    expected: set[str],
    on_start: Callable[[ReceiverResult, Requirement], None] = lambda _r, _q: None,
    on_example: Callable[[], None] = lambda: None,
    on_done: Callable[[ReceiverResult, Outcome], None] = lambda _r, _o: None,
) -> ReceiverResult:
    """Run each requirement's check against `target` and append its graded `Outcome`."""
    started = time.monotonic()
    with CallbackClient(target) as client:
        for requirement in requirements:
            outcome = Outcome(requirement, strict, expected_failure=requirement.id in expected)

            def count(outcome: Outcome = outcome) -> None:
                outcome.examples += 1
                on_example()

            ctx = Context(client, base, on_example=count, strict=strict)
            on_start(result, requirement)
            before = client.history[-1] if client.history else None
            began = time.monotonic()
            try:
                with forced_seed(seed):
                    checks.run(requirement, ctx)
                outcome.grade = Grade.PASS
            except StateUnavailable as exc:
                outcome.skipped = str(exc)
            except Exception as exc:  # a crashed check is graded, never raised
                outcome.failures = conformance_failures(exc)
                if not outcome.failures:
                    outcome.error = f"{type(exc).__name__}: {exc}"
                outcome.grade = requirement.grade(False, strict)
            outcome.seconds = time.monotonic() - began
            deciding = [f.exchange for f in outcome.failures if f.exchange is not None]
            if deciding:
                outcome.exchange = deciding[0]
            elif client.history and client.history[-1] is not before:
                outcome.exchange = client.history[-1]
            result.outcomes.append(outcome)
            on_done(result, outcome)
    result.seconds = time.monotonic() - started
    return result
