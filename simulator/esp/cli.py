"""`bounceback esp`: run the fake ESP from the shell, or list what its spool holds."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click

from simulator.esp.api import DEFAULT_LIMIT, TABLE_ROUTES, listing
from simulator.esp.auth.summary import Listening, start_lines
from simulator.esp.preflight import ESPConfigError, preflight
from simulator.esp.redaction import SecretFilter, masked_url
from simulator.esp.scenario import load_scenario
from simulator.esp.server import TLS_MODES, FakeESP
from simulator.esp.spool import SpoolReader

DEFAULT_SPOOL = "bounceback-esp.sqlite3"
PROGRESS_SECONDS = 5.0


def _schedule(value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        schedule = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r}: give seconds separated by commas, e.g. 1,2,4"
        ) from exc
    if any(item < 0 for item in schedule):
        raise click.BadParameter("retry delays must be >= 0 seconds")
    return schedule


def _credentials(users: tuple[str, ...]) -> dict[str, str]:
    credentials = {}
    for user in users:
        name, colon, password = user.partition(":")
        if not colon or not name:
            raise click.BadParameter(f"{user!r}: expected NAME:PASSWORD", param_hint="--user")
        credentials[name] = password
    return credentials


def _print_listing(spool: Path, limit: int) -> None:
    if not spool.exists():
        raise ESPConfigError(f"no spool at {spool}; start the ESP first or pass --spool")
    reader = SpoolReader(spool)
    try:
        document: dict[str, Any] = {"stats": listing(reader, "/stats", limit)}
        for route in TABLE_ROUTES:
            document.update(listing(reader, route, limit))
    finally:
        reader.close()
    click.echo(json.dumps(document, indent=2))


@click.command("esp")
@click.option("--smtp-host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--smtp-port", default=2525, show_default=True, type=int, help="0 = a free port.")
@click.option("--callback-url", help="Where v2 callbacks are POSTed (required to run).")
@click.option(
    "--scenario", help="Scenario TOML file, or the name of a shipped one (e.g. smoke, mixed)."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for every decision.")
@click.option(
    "--spool",
    default=DEFAULT_SPOOL,
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite spool; restart on the same file to resume pending callbacks.",
)
@click.option(
    "--tls",
    type=click.Choice(TLS_MODES),
    default="smtp",
    show_default=True,
    help="smtp = STARTTLS offered, starttls = required, smtps = implicit TLS, none = plain only.",
)
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="PEM private key.")
@click.option("--user", "users", multiple=True, help="NAME:PASSWORD accepted by AUTH; repeatable.")
@click.option("--allow-auth-without-tls", is_flag=True, help="Offer AUTH on plain connections.")
@click.option("--retry-schedule", help="Seconds between retries, e.g. 1,2,4 (default: scenario).")
@click.option(
    "--batch-delay", type=float, help="Seconds a partial batch waits (default: scenario)."
)
@click.option("--callback-timeout", type=float, help="Seconds per POST (default: scenario).")
@click.option(
    "--api-port",
    type=int,
    help="Serve the dashboard (/), the read API (/messages, ...) and the controls (/api/chaos).",
)
@click.option("--api-host", help="Address the API listens on (default: --smtp-host).")
@click.option(
    "--read-token",
    envvar="BOUNCEBACK_ESP_READ_TOKEN",
    help="Token the dashboard and API ask for (Bearer, or /?token= once); needed beyond loopback.",
)
@click.option(
    "--public-read",
    is_flag=True,
    help="Serve the dashboard and read API beyond loopback without a token (controls stay off).",
)
@click.option("--list", "list_only", is_flag=True, help="Print what the spool holds, and exit.")
@click.option("--limit", default=DEFAULT_LIMIT, show_default=True, help="Rows per --list table.")
@click.option("-v", "--verbose", is_flag=True, help="Log every SMTP command and HTTP request.")
def esp(
    smtp_host: str,
    smtp_port: int,
    callback_url: str | None,
    scenario: str | None,
    seed: int,
    spool: Path,
    tls: str,
    cert: str | None,
    key: str | None,
    users: tuple[str, ...],
    allow_auth_without_tls: bool,
    retry_schedule: str | None,
    batch_delay: float | None,
    callback_timeout: float | None,
    api_port: int | None,
    api_host: str | None,
    read_token: str | None,
    public_read: bool,
    list_only: bool,
    limit: int,
    verbose: bool,
) -> None:
    """Run the fake ESP: accept SMTP mail, decide each recipient's fate from a scenario, and POST
    v2 callbacks (echoing X-CleverTap_META) to --callback-url, retrying from a persistent spool.

    With --list, print the spool's messages, batches, attempts and dead letters as JSON instead.

    Operator mistakes (a taken port, a spool folder that does not exist, a callback URL without
    http://, an unknown scenario or a scenario file with errors) are found before anything starts
    and printed on one line (a scenario lists each of its problems), exit 2.
    """
    if list_only:
        _print_listing(spool, limit)
        return
    if not callback_url or not scenario:
        raise click.UsageError("--callback-url and --scenario are required to run the ESP")
    if (cert is None) != (key is None):
        raise click.UsageError("--cert and --key go together")
    preflight(
        host=smtp_host,
        smtp_port=smtp_port,
        api_port=api_port,
        spool=spool,
        callback_url=callback_url,
        api_host=api_host,
        read_token=read_token,
        public_read=public_read,
    )
    loaded = load_scenario(scenario)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    secret_filter = SecretFilter(callback_url)
    for handler in logging.getLogger().handlers:
        handler.addFilter(secret_filter)
    if not verbose:
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    # SimulatorError (a bad certificate, a spool SQLite cannot open) ends in the root command's
    # handler: one line, exit 2.
    server = FakeESP(
        loaded,
        callback_url,
        seed=seed,
        spool=spool,
        host=smtp_host,
        port=smtp_port,
        tls=tls,
        cert=(cert, key) if cert and key else None,
        credentials=_credentials(users),
        allow_auth_without_tls=allow_auth_without_tls,
        retry_schedule=_schedule(retry_schedule),
        batch_delay=batch_delay,
        callback_timeout=callback_timeout,
        api_port=api_port,
        api_host=api_host,
        read_token=read_token,
        public_read=public_read,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with server:
        summary = loaded.description.splitlines()[0] if loaded.description else ""
        click.echo(f"scenario {loaded.name}: {summary}")
        click.echo(f"SMTP listening on {smtp_host}:{server.port} (tls={tls}, seed={seed})", nl=True)
        ca_path = None
        if server.ca is not None:
            ca_path = spool.with_name(spool.name + ".ca.pem")
            server.ca.cert_pem.write_to_path(str(ca_path))
            click.echo(f"TLS certificate made on the fly; trust the CA in {ca_path}")
        click.echo(f"callbacks to {masked_url(callback_url)}; spool {spool}")
        if api_port is not None:
            click.echo(f"dashboard {server.api_url}/ ; GET /messages, /batches, /attempts, /stats")
            click.echo(f"controls: GET/PUT/DELETE {server.api_url}/api/chaos, DELETE /api/state")
        if loaded.authentication is not None:
            where = Listening(
                smtp_host,
                server.port,
                tls,
                server.api_url if api_port is not None else None,
                str(ca_path.resolve()) if ca_path is not None else None,
            )
            for line in start_lines(
                loaded.authentication,
                loaded.enforcement,
                loaded.blocklist,
                scenario=scenario,
                shipped=not Path(scenario).is_file(),
                where=where,
            ):
                click.echo(line)
        click.echo("press Ctrl-C to stop", nl=True)
        last: dict[str, int] = {}
        try:
            while not stop.wait(PROGRESS_SECONDS):
                stats = server.stats()
                if stats != last:
                    click.echo(
                        "progress: " + ", ".join(f"{k}={v}" for k, v in sorted(stats.items()))
                    )
                    last = stats
        finally:
            click.echo("stopping; pending callbacks stay in the spool for the next start")
