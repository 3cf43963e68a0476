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

from simulator.conformance import checks
from simulator.conformance.client import CallbackClient
from simulator.conformance.context import ConformanceFailure, Context
from simulator.conformance.requirements import CATALOGUE, Needs, Requirement
from simulator.conformance.seeding import forced_seed, round_seed

FUZZED: tuple[str, ...] = tuple(r.id for r in CATALOGUE if r.property_based)


@dataclass
class FuzzResult:
    requirement: Requirement
    examples: int = 0
    rounds: int = 0
    failures: list[ConformanceFailure] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.failures) or self.error is not None


def conformance_failures(exc: BaseException) -> list[ConformanceFailure]:
    """The conformance failures inside `exc`, which may be an ExceptionGroup of several bugs."""
    if isinstance(exc, ConformanceFailure):
        return [exc]
    found: list[ConformanceFailure] = []
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
    on_done: Callable[[FuzzResult], None] = lambda _result: None,
    seed: int = 0,
) -> list[FuzzResult]:
    """Run each property until it fails or its share of `seconds` is spent (one round if None).

    Round N of a property draws from `round_seed(seed, id, N)`: the same seed repeats the run,
    and no two rounds draw the same examples.
    """
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

        base = settings(
            max_examples=max_examples,
            derandomize=False,
            database=None,
            deadline=None,
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        ctx = Context(client, base, on_example=count)
        started = time.monotonic()
        seconds_per_example: float | None = None
        while True:
            size = _round_size(max_examples, share, started, seconds_per_example)
            if size == 0:
                break
            result.rounds += 1
            on_round(requirement, result.rounds)
            ctx.settings = settings(base, max_examples=size)
            round_started = time.monotonic()
            try:
                with forced_seed(round_seed(seed, requirement.id, result.rounds)):
                    checks.run(requirement, ctx)
            except Exception as exc:  # any crash of a check is reported, never raised
                result.failures = conformance_failures(exc)
                if not result.failures:
                    result.error = f"{type(exc).__name__}: {exc}"
                break
            seconds_per_example = (time.monotonic() - round_started) / size
            if share is None:
                break
        on_done(result)
    return results


FIRST_ROUND = 20
"""Examples in the first timed round, which measures how long one example takes."""


def _round_size(
    max_examples: int, share: float | None, started: float, seconds_per_example: float | None
) -> int:
    """How many examples fit in what is left of this property's share of the time budget.

    Rounds are sized up front rather than interrupted: stopping Hypothesis in the middle of an
    example (even with a BaseException) can leave its data tree inconsistent.
    """
    if share is None:
        return max_examples
    remaining = share - (time.monotonic() - started)
    if seconds_per_example is None:
        return min(max_examples, FIRST_ROUND)
    if remaining <= 0:
        return 0
    return max(1, min(max_examples, int(remaining / max(seconds_per_example, 1e-6))))
