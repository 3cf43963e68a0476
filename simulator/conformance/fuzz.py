"""`bounceback fuzz`: the property checks against a receiver URL, for as long as asked.

Each property (CB-4.8 ... CB-4.11, and CB-5.5/CB-5.6 when a state URL is given) runs in rounds of
`max_examples` freshly random examples until the time budget is spent. A failure is shrunk by
Hypothesis; the report quotes the requirement and ends with a curl command that replays the
minimal failing request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hypothesis import Verbosity, settings
from hypothesis.errors import Unsatisfiable

from simulator.conformance import checks
from simulator.conformance.client import CallbackClient
from simulator.conformance.requirements import CATALOGUE, Needs, Requirement

FUZZED: tuple[str, ...] = tuple(r.id for r in CATALOGUE if r.property_based)


@dataclass
class FuzzResult:
    requirement: Requirement
    examples: int = 0
    rounds: int = 0
    failures: list[checks.ConformanceFailure] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.failures) or self.error is not None


def conformance_failures(exc: BaseException) -> list[checks.ConformanceFailure]:
    """The conformance failures inside `exc`, which may be an ExceptionGroup of several bugs."""
    if isinstance(exc, checks.ConformanceFailure):
        return [exc]
    found: list[checks.ConformanceFailure] = []
    for inner in getattr(exc, "exceptions", ()):
        found += conformance_failures(inner)
    cause = exc.__cause__ or exc.__context__
    if not found and cause is not None and cause is not exc:
        found += conformance_failures(cause)
    return found


def fuzz(
    client: CallbackClient,
    *,
    max_examples: int = 100,
    seconds: float | None = None,
    requirement_ids: Iterable[str] = FUZZED,
    on_example: Callable[[Requirement], None] = lambda _r: None,
    on_round: Callable[[Requirement, int], None] = lambda _r, _n: None,
) -> list[FuzzResult]:
    """Run each property until it fails or its share of `seconds` is spent (one round if None)."""
    chosen = [r for r in CATALOGUE if r.id in set(requirement_ids)]
    if client.state is None:
        chosen = [r for r in chosen if r.needs is not Needs.STATE]
    share = None if seconds is None else seconds / max(len(chosen), 1)
    results = []
    for requirement in chosen:
        result = FuzzResult(requirement)
        results.append(result)

        def count(requirement: Requirement = requirement, result: FuzzResult = result) -> None:
            result.examples += 1
            on_example(requirement)

        ctx = checks.Context(
            client,
            settings(
                max_examples=max_examples,
                derandomize=False,
                database=None,
                deadline=None,
                verbosity=Verbosity.quiet,
                print_blob=False,
            ),
            on_example=count,
        )
        started = time.monotonic()
        ctx.stop_at = None if share is None else started + share
        while True:
            result.rounds += 1
            on_round(requirement, result.rounds)
            try:
                checks.run(requirement, ctx)
            except Unsatisfiable:
                break  # the budget ran out before this round's first example: nothing failed
            except Exception as exc:
                result.failures = conformance_failures(exc)
                if not result.failures:
                    result.error = f"{type(exc).__name__}: {exc}"
                break
            if share is None or time.monotonic() - started >= share:
                break
    return results
