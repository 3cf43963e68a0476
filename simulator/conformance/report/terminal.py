"""What `bounceback conform` prints: progress while it runs, then each failure once (field,
expected, got, and the curl line that replays it), the receivers side by side and a verdict.

On a terminal the progress is one live bar (requirements done of all, the one running); in a log
that is not a terminal it is one whole line per requirement graded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from simulator.conformance.grading import ConformRun, Outcome, ReceiverResult
from simulator.conformance.report.about import REPLAY_LIMIT
from simulator.conformance.requirements import Grade, Requirement

EXPECTED_MARK = "*"
STALE_MARK = "!"


def failure_text(receiver: ReceiverResult, outcome: Outcome) -> str:
    """One not-PASS outcome: its reports, each with the replay line (or where to find it)."""
    lines = [f"--- {receiver.label} {receiver.url}"]
    if outcome.error:
        requirement = outcome.requirement
        lines.append(f"{requirement.label}: {outcome.shown}")
        lines.append(f"the check crashed: {outcome.error}")
    for failure in outcome.failures:
        lines.append(failure.report())
        if failure.request is not None:
            curl = failure.request.as_curl()
            if len(curl) <= REPLAY_LIMIT:
                lines.append("replay: " + curl)
            else:
                lines.append(
                    f"replay: a {len(failure.request.content)}-byte request; its curl line is in "
                    "the report (--report DIR)"
                )
    if outcome.expected_failure:
        lines.append("(listed in --expected-failures: does not fail the run)")
    return "\n".join(lines)


def _cell(outcome: Outcome | None) -> str:
    if outcome is None:
        return ""
    mark = STALE_MARK if outcome.stale else EXPECTED_MARK if outcome.expected_failure else ""
    return outcome.shown + mark


def side_by_side(run: ConformRun, verbose: bool = False) -> list[str]:
    """The grades table: a row per requirement, a column per receiver (all rows with -v)."""
    widths = [max(len(_cell(o)) for o in r.outcomes) if r.outcomes else 4 for r in run.receivers]
    widths = [max(w, len(r.label)) for w, r in zip(widths, run.receivers, strict=True)]
    lines = [f"{r.label}  {r.url}" for r in run.receivers]
    header = f"{'':8} {'level':13} " + " ".join(
        r.label.ljust(w) for r, w in zip(run.receivers, widths, strict=True)
    )
    lines += ["", header.rstrip() + "  requirement"]
    hidden = 0
    for index, requirement in enumerate(run.requirements):
        outcomes = [r.outcomes[index] if index < len(r.outcomes) else None for r in run.receivers]
        if not verbose and all(o is not None and o.grade is Grade.PASS for o in outcomes):
            hidden += 1
            continue
        cells = " ".join(_cell(o).ljust(w) for o, w in zip(outcomes, widths, strict=True))
        level = requirement.level_for(run.strict).value
        lines.append(f"{requirement.id:8} {level:13} {cells}  {requirement.title}")
    if hidden == len(run.requirements):
        lines[-1:] = [f"all {hidden} requirements passed on every receiver (-v lists them)"]
    elif hidden:
        lines.append(f"({hidden} more passed on every receiver; -v lists them)")
    if any(o.expected_failure for r in run.receivers for o in r.outcomes):
        lines.append(
            f"{EXPECTED_MARK} listed in --expected-failures; {STALE_MARK} listed but "
            "passed: remove it from the list (fails the run)"
        )
    return lines


def verdict_lines(run: ConformRun) -> list[str]:
    lines = []
    for receiver in run.receivers:
        counts = ", ".join(
            f"{receiver.count(shown)} {shown}"
            for shown in ("PASS", "FAIL", "NON-STRICT", "INFORMATIONAL", "SKIPPED")
            if receiver.count(shown)
        )
        verdict = "conformant to every MUST that ran" if receiver.passed else "NOT CONFORMANT"
        lines.append(f"{receiver.label} {receiver.url}: {verdict} ({counts})")
    return lines


class PlainLines:
    """Progress for a log: one whole line per requirement graded."""

    def __init__(self, console: Any, total: int) -> None:
        self.console, self.total, self.done_count = console, total, 0

    def start(self, receiver: ReceiverResult, requirement: Requirement) -> None:
        """A log gets the line once the requirement is graded."""

    def example(self) -> None:
        """Examples are counted in the outcome; the line gives the total."""

    def done(self, receiver: ReceiverResult, outcome: Outcome) -> None:
        self.done_count += 1
        examples = f", {outcome.examples} examples" if outcome.requirement.property_based else ""
        self.console.print(
            f"[{self.done_count}/{self.total}] {receiver.label} {outcome.requirement.label}: "
            f"{outcome.shown} ({outcome.seconds:.1f} s{examples})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


class LiveBar(PlainLines):
    """Progress on a terminal: requirements done of all, and the one running with its examples."""

    def __init__(self, console: Any, total: int, progress: Any) -> None:
        super().__init__(console, total)
        self.progress = progress
        self.task = progress.add_task("starting", total=total, examples="")

    def start(self, receiver: ReceiverResult, requirement: Requirement) -> None:
        self.examples = 0
        self.progress.update(
            self.task, description=f"{receiver.label} {requirement.label}", examples=""
        )

    def example(self) -> None:
        self.examples += 1
        self.progress.update(self.task, examples=f", {self.examples} examples")

    def done(self, receiver: ReceiverResult, outcome: Outcome) -> None:
        self.done_count += 1
        self.progress.update(self.task, completed=self.done_count)


@contextmanager
def progress_for(console: Any, total: int) -> Iterator[PlainLines]:
    if not console.is_terminal:
        yield PlainLines(console, total)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.description}{task.fields[examples]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield LiveBar(console, total, progress)
