"""`bounceback provider check|test-email|dkim-keygen`, `bounceback send` and `bounceback demo`.

Errors raised on purpose (a bad provider file, a missing option, an unreachable server) are left
to the `bounceback` group, which prints them on one line and exits 2; a verdict (a provider that
could not be reached by `check`, a campaign with failures, a demo that lost callbacks) exits 1.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console

from reference_impl.errors import EXIT_FAILED, PlatformError
from reference_impl.protocol.links import parse_link_key
from reference_impl.protocol.meta import Meta, MetaError
from reference_impl.receiver.store import SQLiteStore
from reference_impl.sender.audience import read_audience
from reference_impl.sender.campaign import (
    DEFAULT_CONNECTIONS,
    Campaign,
    CampaignReport,
    first_message_id,
)
from reference_impl.sender.deliverability import (
    FAIL,
    PASS,
    WARN,
    Finding,
    build_probe,
    check_message,
    load_zone,
    worst,
)
from reference_impl.sender.deliverability.checks import (
    check_accepted,
    check_headers,
    check_list_unsubscribe,
    check_reported,
)
from reference_impl.sender.deliverability.esp import fetch_results, send_probe
from reference_impl.sender.deliverability.probe import PROBE_TO
from reference_impl.sender.demo import DEFAULT_AUDIENCE, DEFAULT_SCENARIO, DemoSummary, run_demo
from reference_impl.sender.dkim import generate_key, public_der, txt_name, zone_entry
from reference_impl.sender.message import TEST_LABEL, MessageError, build_test_email, to_bytes
from reference_impl.sender.progress import campaign_progress
from reference_impl.sender.provider import Provider, load_providers, select_provider
from reference_impl.sender.session import (
    DEFAULT_RETRIES,
    SendFailed,
    SessionUnavailable,
    SmtpSession,
    tls_context,
)
from reference_impl.sender.suppression import (
    ReceiverSuppression,
    StoreSuppression,
    Suppression,
)

__all__ = ["demo", "provider_group", "send"]

_PROVIDER_FILE = click.Path(exists=False, dir_okay=False, path_type=Path)
RECEIVER_URL_ENV = "BOUNCEBACK_RECEIVER_URL"
NEEDS_RECEIVER_URL = (
    "provider {nickname} has preference_center = 'clevertap', whose link is the receiver's page:"
    f" give --receiver-url URL (or set {RECEIVER_URL_ENV}), for example http://127.0.0.1:8080"
)
UNREACHED = "at least one provider could not be reached or refused the session; see above"
TEST_EMAIL_REFUSED = "the server refused the test email: {reason}"
_receiver_url_option = click.option(
    "--receiver-url",
    envvar=RECEIVER_URL_ENV,
    show_envvar=True,
    help="The receiver's base URL; needed by preference_center = 'clevertap' (its page).",
)


LINK_KEYS_ENV = "BOUNCEBACK_LINK_KEYS"
UNSIGNED_LINKS = (
    "  warning: {nickname} has preference_center = 'clevertap' but no link key: its links would"
    f" be unsigned, and the receiver refuses them; give --link-key ID=SECRET (or {LINK_KEYS_ENV})"
)
_link_key_option = click.option(
    "--link-key",
    "link_keys",
    multiple=True,
    envvar=LINK_KEYS_ENV,
    show_envvar=True,
    metavar="ID=SECRET",
    help="The receiver's preference-link key, as the receiver takes it (the first one signs;"
    " in the variable, separate several by spaces).",
)


def _with_link_key(provider: Provider, link_keys: tuple[str, ...]) -> Provider:
    """The provider with the key its preference links are signed with (the first given)."""
    if not link_keys:
        return provider
    return replace(provider, link_key=parse_link_key(link_keys[0]))


class SendSetupError(PlatformError, ValueError):
    """Nothing can be sent yet: an option or a variable the provider needs is missing, or `--to`
    is no address; the message names which."""


PLAIN_LINK = (
    "  warning: {nickname}: {detail}; {advice} (a FAIL in `provider check --deliverability`)"
)
DELIVERABILITY_ONLY = "{option} is only used with --deliverability"
NEEDS_ZONE = (
    "--deliverability needs --zone ZONE.toml (the sending IP and the DNS TXT records),"
    " or --esp HOST:PORT with --esp-api URL (a running fake ESP judges the probe)"
)
ZONE_OR_ESP = "give --zone or --esp, not both"
ESP_TOGETHER = (
    "--esp and --esp-api go together: the probe is sent to one, its verdicts read from the other"
)
BAD_ESP = "--esp {value!r} is not HOST:PORT with a port from 1 to 65535"
KEYGEN_FORMATS = ("dns", "toml")
KEYGEN_TOML = "Add this line under [authentication.dns] of the scenario or zone file:"
REPORT_HEAD = "Deliverability of {nickname}: a probe to {to}, sent from {ip} (zone {zone})"
REPORT_HEAD_ESP = (
    "Deliverability of {nickname}: a probe to {to}, sent through the ESP at {esp}"
    " (verdicts from {api})"
)
REPORT_LINE = "  {verdict:<4}  {check:<21} {detail}"
REPORT_TAIL = "Verdict: {verdict} ({fails} FAIL, {warns} WARN)"


def _unsubscribe_warning(provider: Provider, receiver_url: str | None) -> str | None:
    """The warning for a preference link that is not https, when the link's base is known (the
    custom URL, or the receiver's with `--receiver-url`): the rule of `--deliverability`, stated
    once in `deliverability.checks`, only warned about here, since local setups use http."""
    base = provider.preference_center_url if provider.preference_center == "custom" else None
    if provider.preference_center == "clevertap":
        base = receiver_url
    if base is None:
        return None
    finding = check_list_unsubscribe(f"<{base}>")
    if finding.verdict == PASS:
        return None
    return PLAIN_LINK.format(
        nickname=provider.nickname, detail=finding.detail, advice=finding.advice
    )


def _report_line(finding: Finding) -> str:
    line = REPORT_LINE.format(verdict=finding.verdict, check=finding.check, detail=finding.detail)
    return f"{line}; fix: {finding.advice}" if finding.advice else line


def _esp_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise click.UsageError(BAD_ESP.format(value=value))
    return host.strip("[]"), int(port)


def _deliverability(
    provider: Provider,
    to: str,
    receiver_url: str | None,
    as_json: bool,
    zone_path: Path | None,
    esp: str | None,
    esp_api: str | None,
) -> None:
    """Build the probe, judge it against the zone (or send it through the ESP and read its
    verdicts), print one line per check (or JSON); exit 1 when any check FAILs (a WARN does not
    change the exit code)."""
    _need_receiver_url(provider, receiver_url)
    address = _esp_address(esp) if esp is not None else None
    zone = load_zone(zone_path) if zone_path is not None else None
    try:
        probe = build_probe(provider, to=to, receiver_url=receiver_url)
    except (MetaError, MessageError) as exc:
        raise SendSetupError(f"cannot build the probe to {to!r}: {exc}") from exc
    document: dict[str, object] = {"provider": provider.nickname, "to": to}
    if zone is not None:
        findings = check_message(
            probe.data,
            meta_text=probe.meta_text,
            zone=zone,
            mail_from=probe.mail_from,
            public_key=probe.public_key,
        )
        document |= {"zone": str(zone_path), "client_ip": zone.client_ip}
        head = REPORT_HEAD.format(
            nickname=provider.nickname, to=to, ip=zone.client_ip, zone=zone_path
        )
    elif address is not None and esp_api is not None:
        refusal = send_probe(provider, probe, *address)
        findings = [check_accepted(esp, refusal)]
        if refusal is None:
            findings += check_reported(fetch_results(esp_api, probe.meta_text))
        findings += check_headers(probe.data, probe.meta_text)
        document |= {"esp": esp, "esp_api": esp_api}
        head = REPORT_HEAD_ESP.format(nickname=provider.nickname, to=to, esp=esp, api=esp_api)
    else:
        raise click.UsageError(NEEDS_ZONE)
    verdict = worst(findings)
    if as_json:
        document |= {"verdict": verdict, "checks": [finding.to_json() for finding in findings]}
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(head)
        for finding in findings:
            click.echo(_report_line(finding))
        counts = Counter(finding.verdict for finding in findings)
        click.echo(REPORT_TAIL.format(verdict=verdict, fails=counts[FAIL], warns=counts[WARN]))
    if verdict == FAIL:
        raise SystemExit(EXIT_FAILED)


def _provider(path: Path, nickname: str | None) -> Provider:
    return select_provider(load_providers(path), nickname, str(path))


def _need_receiver_url(provider: Provider, receiver_url: str | None) -> None:
    if provider.preference_center == "clevertap" and not receiver_url:
        raise SendSetupError(NEEDS_RECEIVER_URL.format(nickname=provider.nickname))


def _echo_steps(session: SmtpSession) -> None:
    for step in session.steps:
        click.echo(f"  ok    {step}")


@click.group("provider")
def provider_group() -> None:
    """Provider settings (SMTP account, from and reply addresses, preference center)."""


@provider_group.command("check")
@click.argument("file", type=_PROVIDER_FILE)
@click.option("--nickname", help="Which provider, when the file has several.")
@click.option("--offline", is_flag=True, help="Validate the file only; do not connect.")
@click.option(
    "--deliverability",
    is_flag=True,
    help="Build one probe message as a campaign would, sign it, and judge it against --zone"
    " (DKIM, SPF, DMARC, one-click unsubscribe, Message-ID and Date, line length, the meta)"
    " instead of connecting.",
)
@click.option(
    "--zone",
    "zone_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --deliverability: a TOML file whose [authentication] table holds client_ip,"
    " helo and the DNS TXT records ([authentication.dns]); a fake ESP scenario file works.",
)
@click.option(
    "--to",
    "probe_to",
    default=PROBE_TO,
    show_default=True,
    help="With --deliverability: the probe's recipient.",
)
@click.option(
    "--esp",
    metavar="HOST:PORT",
    help="With --deliverability, instead of --zone: send the probe over SMTP to this running"
    " fake ESP (the provider's other settings kept) and read its verdicts from --esp-api.",
)
@click.option(
    "--esp-api",
    metavar="URL",
    help="With --esp: the fake ESP's API base URL; its GET /messages lists the probe with"
    " authentication_results.",
)
@click.option("--json", "as_json", is_flag=True, help="With --deliverability: print JSON.")
@_receiver_url_option
@_link_key_option
def provider_check(
    file: Path,
    nickname: str | None,
    offline: bool,
    deliverability: bool,
    zone_path: Path | None,
    probe_to: str,
    esp: str | None,
    esp_api: str | None,
    as_json: bool,
    receiver_url: str | None,
    link_keys: tuple[str, ...],
) -> None:
    """Validate FILE, then connect: EHLO, STARTTLS or TLS, AUTH, QUIT, reporting each step.

    Says where a signing provider's DKIM key must be published.
    Warns when a 'clevertap' preference center has no link key to sign its links with, and when
    a preference link (custom, or the receiver's with --receiver-url) is not https.
    Exit 1 when a provider could not be reached or refused the session (the check's verdict).

    With --deliverability --zone ZONE.toml, nothing is connected to: one probe message is judged
    against the zone, one line per check, PASS, WARN or FAIL with what to change. With
    --esp HOST:PORT --esp-api URL instead, the probe is sent to a running fake ESP and DKIM, SPF
    and DMARC are its verdicts. Exit 1 when any check FAILs, 0 otherwise (WARNs included).
    """
    if deliverability:
        if zone_path is None and esp is None and esp_api is None:
            raise click.UsageError(NEEDS_ZONE)
        if zone_path is not None and (esp is not None or esp_api is not None):
            raise click.UsageError(ZONE_OR_ESP)
        if zone_path is None and (esp is None or esp_api is None):
            raise click.UsageError(ESP_TOGETHER)
        provider = _with_link_key(_provider(file, nickname), link_keys)
        _deliverability(provider, probe_to, receiver_url, as_json, zone_path, esp, esp_api)
        return
    unused_options = (
        ("--zone", zone_path is None),
        ("--esp", esp is None),
        ("--esp-api", esp_api is None),
        ("--json", not as_json),
    )
    for option, unused in unused_options:
        if not unused:
            raise click.UsageError(DELIVERABILITY_ONLY.format(option=option))
    if probe_to != PROBE_TO:
        raise click.UsageError(DELIVERABILITY_ONLY.format(option="--to"))
    click.echo(f"Reading {file}")
    providers = [_with_link_key(p, link_keys) for p in load_providers(file)]
    chosen = [select_provider(providers, nickname, str(file))] if nickname else providers
    for provider in providers:
        missing = provider.secret_problem()
        note = f" (not usable yet: {missing})" if missing else ""
        if provider.dkim_selector is not None and provider.dkim_domain is not None:
            where = txt_name(provider.dkim_selector, provider.dkim_domain)
            note = f", DKIM-signed, key at {where}{note}"
        click.echo(
            f"  {provider.nickname}: {provider.scheme}://{provider.host}:{provider.port} OK{note}"
        )
        if provider.preference_center == "clevertap" and provider.link_key is None:
            click.echo(UNSIGNED_LINKS.format(nickname=provider.nickname))
        if (warning := _unsubscribe_warning(provider, receiver_url)) is not None:
            click.echo(warning)
    if offline:
        return
    failed = False
    for provider in chosen:
        click.echo(f"Connecting to {provider.nickname} ({provider.host}:{provider.port})")
        session = SmtpSession(provider, tls_context(provider), provider.secret())
        try:
            session.open()
        except SendFailed as exc:
            failed = True
            _echo_steps(session)
            click.echo(f"  FAIL  {exc.failure.describe()}")
            continue
        session.quit()
        _echo_steps(session)
    if failed:
        click.echo(UNREACHED, err=True)
        raise SystemExit(EXIT_FAILED)


@provider_group.command("test-email")
@click.argument("file", type=_PROVIDER_FILE)
@click.option("--to", "to", required=True, help="Where the test email goes.")
@click.option("--nickname", help="Which provider, when the file has several.")
@_receiver_url_option
def provider_test_email(
    file: Path, to: str, nickname: str | None, receiver_url: str | None
) -> None:
    """Send a test email: one real message through the provider's settings.

    As the vendor page says, the unsubscribe link of a test email does not unsubscribe anyone:
    its link is never signed, and the receiver refuses an unsigned link. Exit 2 when the server
    cannot be reached or refuses the session, 1 when it refuses the message itself.
    """
    provider = _provider(file, nickname)
    _need_receiver_url(provider, receiver_url)
    if (missing := provider.secret_problem()) is not None:
        raise SendSetupError(missing)
    click.echo(f"Sending a test email to {to} through {provider.nickname}")
    try:
        meta = Meta(
            to, provider.account_id, int(time.time()), 0, TEST_LABEL, first_message_id(None)
        )
        data = to_bytes(build_test_email(provider, meta, receiver_url=receiver_url))
    except (MetaError, MessageError) as exc:
        raise SendSetupError(f"cannot send to {to!r}: {exc}") from exc
    click.echo(f"  meta  {meta.encode()}")
    session = SmtpSession(provider, tls_context(provider), provider.secret())
    try:
        session.open()
    except SendFailed as exc:
        _echo_steps(session)
        where = f"provider {provider.nickname} at {provider.host}:{provider.port}"
        raise SessionUnavailable(where, exc.failure) from exc
    try:
        session.send(to, data)
    except SendFailed as exc:
        _echo_steps(session)
        click.echo(TEST_EMAIL_REFUSED.format(reason=exc.failure.describe()), err=True)
        raise SystemExit(EXIT_FAILED) from exc
    session.quit()
    _echo_steps(session)
    click.echo(f"Sent: the server accepted the test email to {to}.")


@provider_group.command("dkim-keygen")
@click.option("--selector", required=True, help="The DKIM selector (s=), a DNS label.")
@click.option("--domain", required=True, help="The signing domain (d=), usually From's domain.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the private key goes (PEM, mode 0600); an existing file is never overwritten.",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(KEYGEN_FORMATS),
    default="dns",
    show_default=True,
    help="dns: the zone-file line to publish; toml: the line for a bounceback zone (a fake ESP"
    " scenario's [authentication.dns], or a --zone file).",
)
def provider_dkim_keygen(selector: str, domain: str, out: Path, output: str) -> None:
    """Make an RSA-2048 DKIM key pair: the private key into --out, the DNS TXT record printed.

    Publish the record, then name the selector, domain and key in the provider file
    (dkim_selector, dkim_domain, dkim_key_file or dkim_key_env).
    """
    record = generate_key(selector, domain, out)
    if output == "toml":
        click.echo(f"Wrote the private key to {out} (mode 0600). {KEYGEN_TOML}", err=True)
        click.echo(zone_entry(selector, domain, public_der(out.read_bytes())))
        return
    click.echo(
        f"Wrote the private key to {out} (mode 0600). Publish this DNS TXT record:", err=True
    )
    click.echo(record)


def _print_report(console: Console, report: CampaignReport) -> None:
    console.print(
        f"Campaign {report.label!r} variant {report.variant}: {len(report.sent)} sent,"
        f" {len(report.failed)} failed, {len(report.suppressed)} suppressed"
        f" in {report.seconds:.1f}s"
    )
    for cause, count in sorted(Counter(s.cause for s in report.suppressed).items()):
        console.print(f"  suppressed ({cause}): {count}")
    for error, count in sorted(report.errors().items()):
        console.print(f"  {error}: {count}")
    for result in report.failed[:20]:
        if result.failure is not None:
            console.print(f"  {result.recipient}: {result.failure.describe()}")
    if len(report.failed) > 20:
        console.print(f"  ... and {len(report.failed) - 20} more failures")
    for problem in report.record_errors:
        console.print(f"[red]not recorded in the store:[/] {problem}")


@click.command("send")
@click.option("--provider", "provider_file", required=True, type=_PROVIDER_FILE)
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
@_receiver_url_option
@_link_key_option
@click.option(
    "--no-suppress",
    is_flag=True,
    help="Mail unsubscribed profiles too (tests only); by default --store, else --receiver-url,"
    " says who is unsubscribed and they are skipped.",
)
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
    link_keys: tuple[str, ...],
    no_suppress: bool,
    connections: int,
    retries: int,
) -> None:
    """Send a campaign: one message per recipient, each stamped with its X-CleverTap_META.

    Profiles the receiver has unsubscribed (hard bounce, spam, unsubscribe; never a soft bounce)
    are skipped and counted as suppressed: the receiver's --store says who, else its
    --receiver-url read API; --no-suppress mails them anyway. Preference links are signed with
    --link-key. Exit 1 when any recipient failed (the report lists each with its section 6 error).
    """
    console = Console()
    provider = _with_link_key(_provider(provider_file, nickname), link_keys)
    _need_receiver_url(provider, receiver_url)
    if provider.preference_center == "clevertap" and provider.link_key is None:
        console.print(f"[yellow]{UNSIGNED_LINKS.strip()}[/]")
    recipients = list(to)
    if audience is not None:
        recipients.extend(read_audience(audience))
    if not recipients:
        raise click.UsageError("give recipients with --audience FILE.csv or --to ADDR")
    store = SQLiteStore(store_path) if store_path is not None else None
    if store is None:
        console.print("[yellow]no --store: sent messages are not recorded for attribution[/]")
    suppression: Suppression | None = None
    remote: ReceiverSuppression | None = None
    if no_suppress:
        console.print("[yellow]--no-suppress: unsubscribed profiles are mailed too[/]")
    elif store is not None:
        suppression = StoreSuppression(store)
    elif receiver_url:
        suppression = remote = ReceiverSuppression(receiver_url)
    else:
        console.print("[yellow]no --store or --receiver-url: nobody is suppressed[/]")
    try:
        campaign = Campaign(
            provider,
            recipients,
            label,
            variant,
            store=store,
            receiver_url=receiver_url,
            connections=connections,
            retries=retries,
            suppression=suppression,
        )
        suppressed = campaign.suppressed()
        to_send = len(recipients) - len({s.recipient for s in suppressed})
        console.print(
            f"Sending to {to_send} recipients through {provider.nickname}"
            f" ({len(suppressed)} suppressed: unsubscribed at the receiver)"
        )
        with campaign_progress(console, to_send, len(suppressed)) as on_result:
            campaign.on_result = on_result
            report = campaign.run(suppressed)
    finally:
        if store is not None:
            store.close()
        if remote is not None:
            remote.close()
    _print_report(console, report)
    if report.failed:
        raise SystemExit(EXIT_FAILED)


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
        console.print(
            f"Receiver still running: dashboard {summary.receiver_url}/ (live feed, profiles,"
            f" reports), API {summary.receiver_url}/api/events"
        )
        console.print("Press Ctrl+C to stop.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        console.print("Stopped; the temporary receiver database is removed.")

    summary = run_demo(console, audience_size, seed, scenario, keep=keep, on_ready=hold)
    if not keep:
        console.print("To browse the receiver's dashboard afterwards: bounceback demo --keep")
    if not summary.ok:
        raise SystemExit(EXIT_FAILED)
