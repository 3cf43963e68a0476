"""`bounceback conform` and `bounceback fuzz`: the conformance suite and fuzzer from a shell."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import click

from simulator.conformance.failures import DEFAULT_FOLDER
from simulator.conformance.fuzz import FUZZED, FuzzResult
from simulator.conformance.grading import ConformRun, ReceiverResult, grade_receiver, run_settings
from simulator.conformance.plugin import PROFILES, expected_failure_ids
from simulator.conformance.report import render_junit, write_report
from simulator.conformance.report.as_junit import fuzz_junit
from simulator.conformance.report.folder import ReportError
from simulator.conformance.requirements import BY_ID, CATALOGUE, Level, Requirement
from simulator.conformance.seeding import pick_seed
from simulator.conformance.transport import Target, TargetError, probe, url_target

PLUGIN = "simulator.conformance.plugin"
EXIT_OK, EXIT_MUST_FAILED, EXIT_USAGE = 0, 1, 2


def plugin_args() -> list[str]:
    """`-p plugin` unless the `pytest11` entry point loads it already (twice is an error): for
    running the pytest suite from a checkout that is not installed."""
    installed = metadata.entry_points(group="pytest11")
    if any(ep.value == PLUGIN for ep in installed):
        return []
    return ["-p", PLUGIN]


def _stop(command: str, error: Exception) -> NoReturn:
    """An operator's mistake: one line on stderr, no traceback, exit 2."""
    click.echo(f"bounceback {command}: {error}", err=True)
    sys.exit(EXIT_USAGE)


def _probed_target(
    command: str, url: str, state_url: str | None = None, state_token: str | None = None
) -> Target:
    """The target for `url`, probed once, or exit 2 on a URL no check could get past."""
    try:
        target = url_target(url, state_url, state_token)
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


def _selected(keyword: str | None, must_only: bool, strict: bool) -> list[Requirement]:
    """The catalogue as `-k` and `--must-only` select it (`-k` is pytest's keyword syntax,
    matched against `CB-4.9 the counts invariant ...`, as the pytest suite's test ids)."""
    chosen = [r for r in CATALOGUE if not must_only or r.level_for(strict) is Level.MUST]
    if keyword:
        from _pytest.mark.expression import Expression

        try:
            expression = Expression.compile(keyword)
        except SyntaxError as exc:
            raise click.UsageError(f"-k {keyword!r} is not a keyword expression: {exc}") from exc
        chosen = [r for r in chosen if expression.evaluate(_matches(r.label))]
    if not chosen:
        raise click.UsageError("no requirement is selected (see `bounceback conform --list`)")
    return chosen


def _matches(label: str) -> Callable[..., bool]:
    return lambda name, /, **_: name.lower() in label.lower()


def _state_urls(urls: tuple[str, ...], state_urls: tuple[str, ...]) -> list[str | None]:
    if state_urls and len(state_urls) != len(urls):
        raise click.UsageError(
            f"--state-url given {len(state_urls)} time(s) for {len(urls)} URL(s): give it once "
            "per URL, in the same order, or not at all"
        )
    return list(state_urls) or [None] * len(urls)


@contextmanager
def _reference_receiver() -> Iterator[tuple[str, str]]:
    """The reference receiver on a free port, for a run given no URL (as the plugin's fixture);
    imported here only, so the ESP side's checks never load the platform's code."""
    from reference_impl.receiver.server import running_receiver

    with (
        tempfile.TemporaryDirectory(prefix="bounceback-reference-") as folder,
        running_receiver(Path(folder) / "receiver.sqlite3") as receiver,
    ):
        yield receiver.callback_url, receiver.url


_STATE_TOKEN = click.option(
    "--state-token",
    envvar="BOUNCEBACK_STATE_TOKEN",
    metavar="TOKEN",
    help="Bearer token for the state read API (a receiver run with a read token asks for it); "
    "also read from $BOUNCEBACK_STATE_TOKEN, which keeps it out of the process list.",
)
"""conform and fuzz read the state API the same way."""


@click.command("conform")
@click.argument("urls", nargs=-1, metavar="[URL]...")
@click.option(
    "--state-url",
    "state_urls",
    multiple=True,
    help="Base URL of a receiver's state read API (section 5 checks); once per URL, in order.",
)
@_STATE_TOKEN
@click.option(
    "--expected-failures",
    "expected",
    multiple=True,
    metavar="ID_OR_FILE",
    help="A requirement id, or a file of ids, expected to fail (strict xfail). Repeatable.",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    help="Write a report folder here: index.html, report.json, junit.xml. Without it no "
    "folder is written.",
)
@click.option("--junitxml", type=click.Path(dir_okay=False), help="Write JUnit XML here too.")
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default="ci",
    show_default=True,
    help="Example budget for the property checks.",
)
@click.option(
    "--seed",
    type=click.IntRange(0),
    help="Seed for the property checks' examples (default: a fresh one, printed and reported).",
)
@click.option("--strict", is_flag=True, help="Apply the project's readings as MUSTs.")
@click.option("--must-only", is_flag=True, help="Run only the MUST-level requirements.")
@click.option("-k", "keyword", help="Only requirements matching this pytest -k expression.")
@click.option("--list", "list_only", is_flag=True, help="List the requirements and exit.")
@click.option("-v", "--verbose", is_flag=True, help="Every requirement in the table, passes too.")
def conform(
    urls: tuple[str, ...],
    state_urls: tuple[str, ...],
    state_token: str | None,
    expected: tuple[str, ...],
    report_dir: str | None,
    junitxml: str | None,
    profile: str,
    seed: int | None,
    strict: bool,
    must_only: bool,
    keyword: str | None,
    list_only: bool,
    verbose: bool,
) -> None:
    """Grade the receiver at each URL against the requirements (default: the reference receiver).

    Several URLs are graded one after the other and shown side by side. Exits 1 when any
    receiver fails a MUST requirement; SHOULD and INFORMATIONAL results are reported but do not
    fail the run. Example: bounceback conform http://127.0.0.1:8025/callback --report out/conform
    """
    if list_only:
        for requirement in CATALOGUE:
            click.echo(requirement.listing(strict))
        return
    requirements = _selected(keyword, must_only, strict)
    states = _state_urls(urls, state_urls)
    try:
        known = expected_failure_ids(list(expected))
    except Exception as exc:  # pytest.UsageError from the shared parser: an operator's mistake
        _stop("conform", exc)
    targets = [
        _probed_target("conform", url, state, state_token)
        for url, state in zip(urls, states, strict=True)
    ]
    seed = pick_seed() if seed is None else seed
    with ExitStack() as stack:
        if not targets:
            callback_url, base_url = stack.enter_context(_reference_receiver())
            targets = [url_target(callback_url, base_url)]
        _grade_all(
            targets, requirements, known, profile, seed, strict, report_dir, junitxml, verbose
        )


def _grade_all(
    targets: list[Target],
    requirements: list[Requirement],
    expected: set[str],
    profile: str,
    seed: int,
    strict: bool,
    report_dir: str | None,
    junitxml: str | None,
    verbose: bool,
) -> NoReturn:
    from rich.console import Console

    from simulator.conformance.report import about, terminal

    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False, soft_wrap=True)
    run = ConformRun(
        about.bounceback_version(),
        datetime.now(UTC),
        seed,
        strict,
        profile,
        requirements,
    )
    receivers = [
        ReceiverResult(f"#{n}", t.callback_url, t.state_url) for n, t in enumerate(targets, 1)
    ]
    named = ", ".join(f"{r.label} {r.url}" for r in receivers)
    err.print(
        f"bounceback conform {run.version}: {len(requirements)} requirements against {named}; "
        f"seed {seed} (--seed {seed} repeats it), profile {profile}, "
        f"strict {'on' if strict else 'off'}",
        markup=False,
        soft_wrap=True,
    )
    base = run_settings(PROFILES[profile])
    with (
        _private_hypothesis_storage(),
        terminal.progress_for(err, len(requirements) * len(targets)) as watch,
    ):
        for receiver, target in zip(receivers, targets, strict=True):
            run.receivers.append(receiver)
            grade_receiver(
                receiver,
                target,
                requirements,
                base=base,
                seed=seed,
                strict=strict,
                expected=expected,
                on_start=watch.start,
                on_example=watch.example,
                on_done=watch.done,
            )
    for receiver in run.receivers:
        for outcome in receiver.outcomes:
            if outcome.failures or outcome.error:
                out.print(terminal.failure_text(receiver, outcome) + "\n", markup=False)
    for line in terminal.side_by_side(run, verbose):
        out.print(line, markup=False)
    out.print("")
    for line in terminal.verdict_lines(run):
        out.print(line, markup=False)
    try:
        if report_dir:
            paths = write_report(run, Path(report_dir))
            out.print(
                f"report: {paths['html']} (also {paths['json'].name}, {paths['junit'].name})",
                markup=False,
            )
        if junitxml:
            Path(junitxml).write_text(render_junit(run), encoding="utf-8")
    except (ReportError, OSError) as exc:
        _stop("conform", exc)
    out.print(
        f"seed {seed}: bounceback conform ... --seed {seed} draws the same examples", markup=False
    )
    sys.exit(EXIT_OK if run.passed else EXIT_MUST_FAILED)


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
@_STATE_TOKEN
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
@click.option(
    "--seed",
    type=click.IntRange(0),
    help="Seed for the examples (default: a fresh one, printed and saved with each failure).",
)
@click.option("--junit", "junit", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@click.option(
    "--failures",
    "failures_dir",
    type=click.Path(file_okay=False),
    default=DEFAULT_FOLDER,
    show_default=True,
    help="Save each failure here (made only when one occurs), for --replay.",
)
@click.option(
    "--replay",
    "replay_path",
    type=click.Path(exists=True),
    help="Send a saved failure (a file, or each in a folder) to URL again and give the verdict.",
)
def fuzz_command(
    url: str,
    state_url: str | None,
    state_token: str | None,
    max_examples: int,
    only: tuple[str, ...],
    seconds: float | None,
    seed: int | None,
    junit: str | None,
    failures_dir: str,
    replay_path: str | None,
) -> None:
    """Fuzz the receiver at URL with the property checks; exit 1 on any failure.

    A failure is shrunk to a minimal example, printed as a ready-to-run curl command and saved
    to the failures folder; `--replay FILE` sends it again. Example: bounceback fuzz
    http://127.0.0.1:8025/callback --seconds 60 --seed 7
    """
    from rich.console import Console

    from simulator.conformance.client import CallbackClient
    from simulator.conformance.failures import ReplayError, save_failure
    from simulator.conformance.fuzz import fuzz

    if replay_path:
        _replay(url, state_url, state_token, Path(replay_path))
    target = _probed_target("fuzz", url, state_url, state_token)
    seed = pick_seed() if seed is None else seed
    console = Console(stderr=True)
    budget = f"for about {seconds:g}s" if seconds else "for one round"
    console.print(
        f"bounceback fuzz: {url}, {max_examples} examples per property, {budget}, seed {seed}",
        markup=False,
        soft_wrap=True,
    )
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
            seed=seed,
        )
    failed = [result for result in results if result.failed]
    for result in failed:
        click.echo(f"\nFAILED {result.requirement.label}")
        if result.error:
            click.echo(f"  the check crashed: {result.error}")
        for failure in result.failures:
            click.echo(failure.report())
            if failure.request is not None:
                click.echo("replay: " + failure.request.as_curl())
                try:
                    path = save_failure(Path(failures_dir), failure, seed)
                except ReplayError as exc:
                    _stop("fuzz", exc)
                click.echo(f"saved: {path} (bounceback fuzz --replay {path} URL)")
    if junit:
        try:
            Path(junit).write_text(fuzz_junit(results, url, seed), encoding="utf-8")
        except OSError as exc:
            _stop("fuzz", exc)
    total = sum(result.examples for result in results)
    click.echo(
        f"\nbounceback fuzz: {total} examples over {len(results)} properties, {len(failed)} "
        f"failed; seed {seed} (--seed {seed} repeats it)"
    )
    sys.exit(1 if failed else 0)


def _replay(url: str, state_url: str | None, state_token: str | None, path: Path) -> NoReturn:
    """`fuzz --replay`: each saved failure sent again; exit 1 if any still fails."""
    from simulator.conformance.client import CallbackClient
    from simulator.conformance.failures import ReplayError, replay, saved_failures

    try:
        saved = saved_failures(path)
    except ReplayError as exc:
        _stop("fuzz", exc)
    target = _probed_target("fuzz", url, state_url, state_token)
    still = 0
    with CallbackClient(target) as client:
        for item in saved:
            exchange, failure = replay(client, item)
            label = BY_ID[item.requirement_id].label
            if failure is None:
                click.echo(
                    f"{item.path}: {label}: PASS, the saved failure no longer reproduces "
                    f"(HTTP {exchange.status})"
                )
                continue
            still += 1
            click.echo(f"{item.path}: {label}: {failure.grade.value}, reproduced")
            click.echo(failure.report())
            click.echo("replay: " + exchange.request.as_curl())
    click.echo(f"bounceback fuzz --replay: {still} of {len(saved)} saved failure(s) reproduced")
    sys.exit(1 if still else 0)
