"""`bounceback certify`: grade a vendor's ESP live, or from a recording it sent in.

Exit 0 certified, 1 not certified (a MUST check failed: the vendor's verdict), 2 when the run
could not be made at all (a bad plan, option or recording, a port in use, the vendor's SMTP out of
reach): those errors are `PlatformError`s, printed on one line by the `bounceback` group.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.table import Table

from reference_impl.certify.checks import (
    FAILING,
    INFORMATIONAL,
    MUST,
    PASS,
    Certification,
    grade,
)
from reference_impl.certify.plan import Plan, load_plan
from reference_impl.certify.recording import Recording, read_recording
from reference_impl.certify.report import write_report
from reference_impl.certify.run import live_run
from reference_impl.errors import EXIT_FAILED, PlatformError
from reference_impl.sender.provider import load_providers, select_provider
from simulator.esp.catalog import PLAN, resolve_path

__all__ = ["certify"]

RECORDING_NAME = "recording.jsonl"


class CertifyInputError(PlatformError, ValueError):
    """An option or a recording is unusable for this plan; nothing was graded."""


def _parse_listen(value: str) -> tuple[str, int]:
    """Split HOST:PORT (IPv6 as [::1]:PORT), refusing anything that is not a usable port."""
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise CertifyInputError(
            f"--listen {value!r} is not HOST:PORT (for example 127.0.0.1:8025; port 0 to 65535)"
        )
    return host, int(port_text)


def _points_at(url: str, host: str, port: int) -> bool:
    """Whether `url` names the listen address itself (else a tunnel or proxy must bridge them)."""
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return (parts.hostname, parts.port or default) == (host, port)


def _check_recording_matches(plan: Plan, recording: Recording) -> None:
    """The recording's probes must be the plan's, with the same addresses and outcomes."""
    planned = {p.id: p for p in plan.probes}
    problems = []
    for probe in recording.probes:
        spec = planned.get(probe.id)
        if spec is None:
            problems.append(f"probe {probe.id!r} is in the recording but not in the plan")
        elif (spec.to, spec.expect) != (probe.to, probe.expect):
            problems.append(
                f"probe {probe.id!r}: the plan says {spec.to} -> {spec.expect}, the recording "
                f"{probe.to} -> {probe.expect}"
            )
    if not recording.probes:
        problems.append("the recording has no 'probe' records: it cannot be graded")
    if problems:
        raise CertifyInputError(
            "the recording does not belong to this plan:\n  " + "\n  ".join(problems)
        )


def _grade_recording(plan: Plan, recording: Recording) -> Certification:
    """Grade a recording against its plan; deadline: the run's, else the plan's from the start."""
    _check_recording_matches(plan, recording)
    if recording.run is not None:
        deadline_at = recording.run.deadline_at
    else:
        deadline_at = min(p.sent_at for p in recording.probes) + plan.deadline_seconds
    return grade(recording, deadline_at=deadline_at, plan_name=plan.name)


def _print_summary(console: Console, result: Certification) -> None:
    table = Table(title=f"Certification: {result.plan_name}")
    for column in ("check", "level", "source", "grade", "result"):
        table.add_column(column)
    styles = {PASS: "green", "FAIL": "red", "MISSING": "red", "NON-STRICT": "yellow"}
    for check in result.checks:
        style = styles.get(check.grade, "cyan")
        table.add_row(
            check.id,
            check.level,
            check.provenance.kind,
            f"[{style}]{check.grade}[/]",
            check.summary,
        )
    console.print(table)


def _vendor_host(plan: Plan) -> str | None:
    """The SMTP host of the plan's provider file, for the report; None when it cannot be read."""
    if plan.provider is None:
        return None
    try:
        return select_provider(load_providers(plan.provider), None, str(plan.provider)).host
    except PlatformError:
        return None


def _finish(console: Console, result: Certification, report_dir: Path, plan: Plan) -> None:
    """Print, write the report, and exit 0 only when no MUST check failed or is missing."""
    _print_summary(console, result)
    for check in result.checks:
        if check.grade not in (PASS, INFORMATIONAL):
            console.print(check.failure_message, markup=False, highlight=False)
    paths = write_report(result, report_dir, _vendor_host(plan))
    console.print(f"Report: {paths['html']} (also {paths['json'].name}, {paths['junit'].name})")
    blocking = [c.id for c in result.checks if c.level == MUST and c.grade in FAILING]
    if blocking:
        console.print(f"[red]NOT CERTIFIED[/]: MUST checks failed: {', '.join(blocking)}")
        raise SystemExit(EXIT_FAILED)
    console.print("[green]CERTIFIED[/]: every MUST check passed")


@click.command()
@click.argument("plan_name", metavar="PLAN")
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where the recording receiver listens; the plan's callback_url must reach it.",
)
@click.option(
    "--report",
    "report_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for index.html, report.json, junit.xml (and the live run's recording).",
)
@click.option(
    "--from-recording",
    "recording_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Grade this saved capture (JSON lines) instead of running live.",
)
def certify(
    plan_name: str, listen: str | None, report_dir: Path, recording_path: Path | None
) -> None:
    """Certify a vendor ESP's v2 callbacks against PLAN; exit 0 only when no MUST check failed.

    PLAN is a plan file, or the name of a shipped one (`bounceback scenarios` lists them).

    Live: start a recording receiver at --listen, send the plan's probes through the vendor's SMTP,
    wait for the callbacks (answering one with 500 and one slowly, as the plan asks), then grade.
    With --from-recording: grade a capture a vendor sent in.
    """
    console = Console()
    plan = load_plan(resolve_path(plan_name, (PLAN,)))
    console.print(
        f"Plan {plan.name}: {len(plan.probes)} probes, deadline {plan.deadline_seconds:g} s"
    )
    if recording_path is not None:
        console.print(f"Grading recording {recording_path}")
        recording = read_recording(recording_path)
        _finish(console, _grade_recording(plan, recording), report_dir, plan)
        return
    if listen is None:
        raise CertifyInputError("a live run needs --listen HOST:PORT (or give --from-recording)")
    host, port = _parse_listen(listen)
    if not _points_at(plan.callback_url, host, port):
        console.print(
            f"Note: callback_url {plan.callback_url} is not {host}:{port}; make sure it reaches "
            "this address (a tunnel or proxy), or the vendor's callbacks will never be recorded."
        )
    recording = live_run(plan, host, port, report_dir / RECORDING_NAME, console)
    _finish(console, _grade_recording(plan, recording), report_dir, plan)
