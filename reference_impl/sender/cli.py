"""`bounceback provider check|test-email`, `bounceback send` and `bounceback demo`."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path

import click
from rich.console import Console

from reference_impl.protocol.meta import Meta, MetaError
from reference_impl.receiver.store import SQLiteStore
from reference_impl.sender import errors as e
from reference_impl.sender.campaign import (
    DEFAULT_CONNECTIONS,
    DEFAULT_RETRIES,
    Campaign,
    CampaignError,
    CampaignReport,
    SendFailed,
    SmtpSession,
    first_message_id,
    read_audience,
    tls_context,
)
from reference_impl.sender.demo import DEFAULT_AUDIENCE, DEFAULT_SCENARIO, DemoSummary, run_demo
from reference_impl.sender.message import TEST_LABEL, MessageError, build_test_email, to_bytes
from reference_impl.sender.progress import campaign_progress
from reference_impl.sender.provider import (
    Provider,
    ProviderError,
    load_providers,
    select_provider,
)

PROVIDER_FILE = click.Path(exists=False, dir_okay=False, path_type=Path)


def _provider(path: Path, nickname: str | None) -> Provider:
    try:
        return select_provider(load_providers(path), nickname, str(path))
    except ProviderError as exc:
        raise click.ClickException(str(exc)) from exc


def _session(provider: Provider) -> SmtpSession:
    try:
        return SmtpSession(provider, tls_context(provider), provider.secret())
    except CampaignError as exc:
        raise click.ClickException(f"provider {provider.nickname}: {exc}") from exc


def _failure_line(failure: e.Failure) -> str:
    return f"{e.classify(failure)} at {failure.stage}: {failure.detail}"


@click.group("provider")
def provider_group() -> None:
    """Provider settings (SMTP account, from and reply addresses, preference center)."""


@provider_group.command("check")
@click.argument("file", type=PROVIDER_FILE)
@click.option("--nickname", help="Which provider, when the file has several.")
@click.option("--offline", is_flag=True, help="Validate the file only; do not connect.")
def provider_check(file: Path, nickname: str | None, offline: bool) -> None:
    """Validate FILE, then connect: EHLO, STARTTLS or TLS, AUTH, QUIT, reporting each step."""
    click.echo(f"Reading {file}")
    try:
        providers = load_providers(file)
        chosen = [select_provider(providers, nickname, str(file))] if nickname else providers
    except ProviderError as exc:
        raise click.ClickException(str(exc)) from exc
    for provider in providers:
        click.echo(f"  {provider.nickname}: {provider.scheme}://{provider.host}:{provider.port} OK")
    if offline:
        return
    failed = False
    for provider in chosen:
        click.echo(f"Connecting to {provider.nickname} ({provider.host}:{provider.port})")
        session = _session(provider)
        try:
            session.open()
        except SendFailed as exc:
            failed = True
            for step in session.steps:
                click.echo(f"  ok    {step}")
            click.echo(f"  FAIL  {_failure_line(exc.failure)}")
            continue
        session.quit()
        for step in session.steps:
            click.echo(f"  ok    {step}")
    if failed:
        raise click.ClickException("at least one provider could not be reached; see above")


@provider_group.command("test-email")
@click.argument("file", type=PROVIDER_FILE)
@click.option("--to", "to", required=True, help="Where the test email goes.")
@click.option("--nickname", help="Which provider, when the file has several.")
def provider_test_email(file: Path, to: str, nickname: str | None) -> None:
    """Send a test email: one real message through the provider's settings."""
    provider = _provider(file, nickname)
    click.echo(f"Sending a test email to {to} through {provider.nickname}")
    try:
        meta = Meta(
            to, provider.account_id, int(time.time()), 0, TEST_LABEL, first_message_id(None)
        )
        data = to_bytes(build_test_email(provider, meta))
    except (MetaError, MessageError) as exc:
        raise click.ClickException(f"cannot send to {to!r}: {exc}") from exc
    click.echo(f"  meta  {meta.encode()}")
    session = _session(provider)
    try:
        session.open()
        session.send(to, data)
    except SendFailed as exc:
        for step in session.steps:
            click.echo(f"  ok    {step}")
        raise click.ClickException(_failure_line(exc.failure)) from exc
    session.quit()
    for step in session.steps:
        click.echo(f"  ok    {step}")
    click.echo(f"Sent: the server accepted the test email to {to}.")


def _print_report(console: Console, report: CampaignReport) -> None:
    console.print(
        f"Campaign {report.label!r} variant {report.variant}: {len(report.sent)} sent,"
        f" {len(report.failed)} failed in {report.seconds:.1f}s"
    )
    for error, count in sorted(report.errors().items()):
        console.print(f"  {error}: {count}")
    for result in report.failed[:20]:
        if result.failure is not None:
            console.print(f"  {result.recipient}: {_failure_line(result.failure)}")
    if len(report.failed) > 20:
        console.print(f"  ... and {len(report.failed) - 20} more failures")
    for problem in report.record_errors:
        console.print(f"[red]not recorded in the store:[/] {problem}")


@click.command("send")
@click.option("--provider", "provider_file", required=True, type=PROVIDER_FILE)
@click.option("--nickname", help="Which provider, when the file has several.")
@click.option(
    "--audience",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of recipients: the `email` column, or the first column if no header names one.",
)
@click.option("--to", "to", multiple=True, help="A recipient; repeat for several.")
@click.option("--label", default="wzrk_default", show_default=True, help="Meta field 6.")
@click.option("--variant", default=0, show_default=True, type=click.IntRange(0), help="Meta 5.")
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The receiver's SQLite file: sent messages and send failures are recorded there.",
)
@click.option("--receiver-url", help="The receiver's base URL (for preference_center='clevertap').")
@click.option(
    "--connections", default=DEFAULT_CONNECTIONS, show_default=True, type=click.IntRange(1, 64)
)
@click.option("--retries", default=DEFAULT_RETRIES, show_default=True, type=click.IntRange(0, 10))
def send(
    provider_file: Path,
    nickname: str | None,
    audience: Path | None,
    to: tuple[str, ...],
    label: str,
    variant: int,
    store_path: Path | None,
    receiver_url: str | None,
    connections: int,
    retries: int,
) -> None:
    """Send a campaign: one message per recipient, each stamped with its X-CleverTap_META."""
    console = Console()
    provider = _provider(provider_file, nickname)
    recipients = list(to)
    if audience is not None:
        recipients.extend(read_audience(audience))
    if not recipients:
        raise click.UsageError("give recipients with --audience FILE.csv or --to ADDR")
    store = SQLiteStore(store_path) if store_path is not None else None
    if store is None:
        console.print("[yellow]no --store: sent messages are not recorded for attribution[/]")
    console.print(f"Sending to {len(recipients)} recipients through {provider.nickname}")
    try:
        with campaign_progress(console, len(recipients)) as on_result:
            report = Campaign(
                provider,
                recipients,
                label,
                variant,
                store=store,
                receiver_url=receiver_url,
                connections=connections,
                retries=retries,
                on_result=on_result,
            ).run()
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if store is not None:
            store.close()
    _print_report(console, report)
    if report.failed:
        raise SystemExit(1)


@click.command("demo")
@click.option("--keep", is_flag=True, help="Leave the receiver running and print its URL.")
@click.option(
    "--audience-size", default=DEFAULT_AUDIENCE, show_default=True, type=click.IntRange(1, 100_000)
)
@click.option("--seed", default=0, show_default=True, type=int, help="Faker and scenario seed.")
@click.option("--scenario", default=DEFAULT_SCENARIO, show_default=True, help="ESP scenario.")
def demo(keep: bool, audience_size: int, seed: int, scenario: str) -> None:
    """Receiver + fake ESP + a campaign, then a summary; exit 1 if anything was lost."""
    console = Console()

    def hold(summary: DemoSummary) -> None:
        console.print(f"Receiver still running at {summary.receiver_url} (API: /api/events)")
        console.print("Press Ctrl+C to stop.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        console.print("Stopped; the temporary receiver database is removed.")

    summary = run_demo(console, audience_size, seed, scenario, keep=keep, on_ready=hold)
    if not summary.ok:
        raise SystemExit(1)
