"""`bounceback conform` and `bounceback fuzz`: the conformance suite and fuzzer from a shell."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import click

from simulator.conformance.fuzz import FUZZED, FuzzResult
from simulator.conformance.requirements import CATALOGUE, Requirement
from simulator.conformance.transport import Target, TargetError, probe, url_target

SUITE = "simulator.conformance.suite"
PLUGIN = "simulator.conformance.plugin"
EXIT_OK, EXIT_MUST_FAILED, EXIT_USAGE = 0, 1, 2


def plugin_args() -> list[str]:
    """`-p plugin` unless the `pytest11` entry point loads it already (twice is an error)."""
    installed = metadata.entry_points(group="pytest11")
    if any(ep.value == PLUGIN for ep in installed):
        return []
    return ["-p", PLUGIN]


def _print_catalogue() -> None:
    for requirement in CATALOGUE:
        click.echo(requirement.listing())


def _stop(command: str, error: Exception) -> NoReturn:
    """An operator's mistake: one line on stderr, no traceback, exit 2."""
    click.echo(f"bounceback {command}: {error}", err=True)
    sys.exit(EXIT_USAGE)


def _probed_target(command: str, url: str, state_url: str | None = None) -> Target:
    """The target for `url`, probed once, or exit 2 on a URL no check could get past."""
    try:
        target = url_target(url, state_url)
        probe(target)
    except TargetError as exc:
        _stop(command, exc)
    return target


@contextmanager
def _private_hypothesis_storage() -> Iterator[None]:
    """Keep Hypothesis's files (example database, Unicode tables) out of the user's folder."""
    from hypothesis.configuration import set_hypothesis_home_dir

    with tempfile.TemporaryDirectory(prefix="bounceback-hypothesis-") as home:
        set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            set_hypothesis_home_dir(None)


class _Outcome:
    """Picks up the plugin's result tally at the end of the in-process pytest run."""

    def __init__(self) -> None:
        self.tally: Any = None

    def pytest_sessionfinish(self, session: Any) -> None:
        from simulator.conformance.plugin import RESULTS_KEY

        self.tally = session.config.stash.get(RESULTS_KEY, None)


@click.command("conform")
@click.argument("url", required=False)
@click.option("--state-url", help="Base URL of the receiver's state read API (section 5 checks).")
@click.option(
    "--expected-failures",
    "expected",
    multiple=True,
    metavar="ID_OR_FILE",
    help="A requirement id, or a file of ids, expected to fail (strict xfail). Repeatable.",
)
@click.option("--junitxml", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@click.option(
    "--profile",
    type=click.Choice(["dev", "ci", "fuzz"]),
    default="ci",
    show_default=True,
    help="Hypothesis profile for the property checks.",
)
@click.option("--must-only", is_flag=True, help="Run only the MUST-level requirements.")
@click.option("-k", "keyword", help="Only requirements matching this pytest -k expression.")
@click.option("--list", "list_only", is_flag=True, help="List the requirements and exit.")
@click.option("-v", "--verbose", is_flag=True, help="One line per requirement.")
def conform(
    url: str | None,
    state_url: str | None,
    expected: tuple[str, ...],
    junitxml: str | None,
    profile: str,
    must_only: bool,
    keyword: str | None,
    list_only: bool,
    verbose: bool,
) -> None:
    """Run the conformance suite against the receiver at URL (default: the reference receiver).

    Exits 1 when any MUST requirement fails; SHOULD failures are reported but do not fail the
    run. Example: bounceback conform http://127.0.0.1:8025/callback --junitxml conform.xml
    """
    import pytest

    if list_only:
        _print_catalogue()
        return
    if url:
        _probed_target("conform", url, state_url)
    target = url or "the reference receiver (started in process on a free port)"
    click.echo(f"bounceback conform: {len(CATALOGUE)} requirements against {target}")
    with tempfile.TemporaryDirectory(prefix="bounceback-conform-") as workdir:
        ini = Path(workdir) / "pytest.ini"
        ini.write_text("[pytest]\n", encoding="utf-8")
        args = [
            *plugin_args(),
            "-c",
            str(ini),
            "--rootdir",
            workdir,
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",
            "--pyargs",
            SUITE,
            "--bounceback-profile",
            profile,
            "-rfEx",
            "-v" if verbose else "-q",
        ]
        if url:
            args += ["--receiver-url", url]
        if state_url:
            args += ["--receiver-state-url", state_url]
        for value in expected:
            args += ["--expected-failures", value]
        if junitxml:
            args += ["--junitxml", str(Path(junitxml).resolve())]
        if must_only:
            args.append("--must-only")
        if keyword:
            args += ["-k", keyword]
        outcome = _Outcome()
        with _private_hypothesis_storage():
            code = pytest.main(args, plugins=[outcome])
    if outcome.tally is None or code in (
        pytest.ExitCode.USAGE_ERROR,
        pytest.ExitCode.INTERNAL_ERROR,
        pytest.ExitCode.NO_TESTS_COLLECTED,
    ):
        click.echo(f"bounceback conform: the suite did not run (pytest exit code {int(code)})")
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_MUST_FAILED if outcome.tally.must_failed else EXIT_OK)


class _PlainFuzzLines:
    """Fuzz progress for a log that is not a terminal: one whole line as each property starts
    and ends (a live bar there leaves cut lines such as `1020 example…`)."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.started: dict[str, float] = {}

    def round(self, requirement: Requirement, number: int) -> None:
        if requirement.id not in self.started:
            self.started[requirement.id] = time.monotonic()
            self._line(f"{requirement.label}: fuzzing")

    def example(self, requirement: Requirement) -> None:
        """Examples are counted in the result; a log gets the total once the property ends."""

    def done(self, result: FuzzResult) -> None:
        seconds = time.monotonic() - self.started.get(result.requirement.id, time.monotonic())
        verdict = "FAILED" if result.failed else "passed"
        self._line(
            f"{result.requirement.label}: {verdict}, {result.examples} examples in "
            f"{result.rounds} round(s), {seconds:.1f} s"
        )

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


class _TerminalFuzzBars(_PlainFuzzLines):
    """Fuzz progress on a terminal: a live bar per property whose clock stops when it ends."""

    def __init__(self, console: Any, progress: Any) -> None:
        super().__init__(console)
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def round(self, requirement: Requirement, number: int) -> None:
        if requirement.id not in self.tasks:
            self.tasks[requirement.id] = self.progress.add_task(
                requirement.label, total=None, examples=0, round=number
            )
        self.progress.update(self.tasks[requirement.id], round=number)

    def example(self, requirement: Requirement) -> None:
        task = self.tasks[requirement.id]
        self.progress.update(task, examples=self.progress.tasks[task].fields["examples"] + 1)

    def done(self, result: FuzzResult) -> None:
        task = self.tasks.get(result.requirement.id)
        if task is not None:  # finished: rich's elapsed column stops at its finish time
            self.progress.update(task, total=1, completed=1)


@contextmanager
def _fuzz_progress(console: Any) -> Iterator[_PlainFuzzLines]:
    if not console.is_terminal:
        yield _PlainFuzzLines(console)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[examples]} examples, round {task.fields[round]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        yield _TerminalFuzzBars(console, progress)


@click.command("fuzz")
@click.argument("url")
@click.option("--state-url", help="Base URL of the state read API; adds CB-5.5 and CB-5.6.")
@click.option(
    "--max-examples",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Examples per property per round.",
)
@click.option(
    "--requirement",
    "only",
    multiple=True,
    type=click.Choice(FUZZED),
    help="Fuzz only this property requirement (repeatable); default: all of them.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0, min_open=True),
    help="Keep fuzzing, round after round, for about this long in all (default: one round).",
)
def fuzz_command(
    url: str,
    state_url: str | None,
    max_examples: int,
    only: tuple[str, ...],
    seconds: float | None,
) -> None:
    """Fuzz the receiver at URL with the property checks; exit 1 on any failure.

    A failure is shrunk to a minimal example and printed as a ready-to-run curl command.
    Example: bounceback fuzz http://127.0.0.1:8025/callback --seconds 60
    """
    from rich.console import Console

    from simulator.conformance.client import CallbackClient
    from simulator.conformance.fuzz import fuzz

    target = _probed_target("fuzz", url, state_url)
    console = Console(stderr=True)
    budget = f"for about {seconds:g}s" if seconds else "for one round"
    console.print(f"bounceback fuzz: {url}, {max_examples} examples per property, {budget}")
    with (
        _private_hypothesis_storage(),
        CallbackClient(target) as client,
        _fuzz_progress(console) as watch,
    ):
        results = fuzz(
            client,
            max_examples=max_examples,
            seconds=seconds,
            requirement_ids=only or FUZZED,
            on_example=watch.example,
            on_round=watch.round,
            on_done=watch.done,
        )
    failed = [result for result in results if result.failed]
    for result in failed:
        click.echo(f"\nFAILED {result.requirement.label}")
        if result.error:
            click.echo(f"  the check crashed: {result.error}")
        for failure in result.failures:
            click.echo(failure.report())
            if failure.request is not None:
                click.echo("\nreproduce with:\n" + failure.request.as_curl())
    total = sum(result.examples for result in results)
    click.echo(
        f"\nbounceback fuzz: {total} examples over {len(results)} properties, {len(failed)} failed"
    )
    sys.exit(1 if failed else 0)
