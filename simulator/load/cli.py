"""`bounceback load`: drive Locust with the shipped user classes, then verify what was acknowledged.

Everything after the target is handed to Locust unchanged (`--users`, `--spawn-rate`, `--headless`,
`--run-time`, `--master`, `--worker`, `--csv`, `--html`, ...), so a distributed run is Locust's own:
start `bounceback load callbacks URL --master ...` on one machine and `bounceback load callbacks URL
--worker --master-host HOST` on the others. Each process writes its ledger to `--ledger` on its own
machine; gather the folders and give them all to `load verify`.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from simulator.load.ledger import read_ledgers
from simulator.load.settings import BATCH_ENV, LEDGER_ENV, PATH_ENV, PER_SESSION_ENV
from simulator.load.verify import difference, logged_metas, system_events

DEFAULT_LEDGER = Path("bounceback-load-ledger")
LEDGER_OPTION = click.option(
    "--ledger",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_LEDGER,
    show_default=True,
    help="Folder for this machine's ledger of acknowledged events.",
)
PASS_THROUGH = {"ignore_unknown_options": True}


def _users_file() -> str:
    spec = importlib.util.find_spec("simulator.load.users")
    assert spec is not None and spec.origin is not None
    return spec.origin


def _locust(user_class: str, host: str, env: dict[str, str], args: tuple[str, ...]) -> int:
    command = [sys.executable, "-m", "locust", "-f", _users_file(), "--host", host, *args]
    command.append(user_class)
    return subprocess.call(command, env={**os.environ, **env})


@click.group()
def load() -> None:
    """Distributed load from Locust: callbacks against a receiver, SMTP against an ESP."""


@load.command(context_settings=PASS_THROUGH)
@click.argument("url")
@LEDGER_OPTION
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.argument("locust_args", nargs=-1, type=click.UNPROCESSED)
def callbacks(url: str, ledger: Path, batch_size: int, locust_args: tuple[str, ...]) -> None:
    """Post v2 callbacks to URL: valid, partly failing, retried and oversize batches.

    Arguments after URL go to Locust, e.g. `--headless --users 20 --run-time 1m`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.UsageError(f"{url!r} is not a callback URL: give http(s)://host[:port]/path")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    env = {LEDGER_ENV: str(ledger), PATH_ENV: path, BATCH_ENV: str(batch_size)}
    sys.exit(_locust("CallbackUser", f"{parts.scheme}://{parts.netloc}", env, locust_args))


@load.command(context_settings=PASS_THROUGH)
@click.argument("target")
@LEDGER_OPTION
@click.option("--per-session", default=10, show_default=True, type=click.IntRange(1, 10_000))
@click.argument("locust_args", nargs=-1, type=click.UNPROCESSED)
def smtp(target: str, ledger: Path, per_session: int, locust_args: tuple[str, ...]) -> None:
    """Send mail to an ESP at HOST:PORT, every message with a unique X-CleverTap_META.

    Arguments after HOST:PORT go to Locust.
    """
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.UsageError(f"{target!r} is not HOST:PORT")
    env = {LEDGER_ENV: str(ledger), PER_SESSION_ENV: str(per_session)}
    sys.exit(_locust("SmtpUser", f"smtp://{host}:{port}", env, locust_args))


@load.command()
@click.argument("receiver_url")
@click.option(
    "--ledger",
    "ledgers",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    default=[DEFAULT_LEDGER],
    show_default=True,
    help="Ledger folder or file; repeat for the folders gathered from several machines.",
)
@click.option("--read-token", default=None, help="The receiver's read token, if it has one.")
def verify(receiver_url: str, ledgers: tuple[Path, ...], read_token: str | None) -> None:
    """Check that the receiver at RECEIVER_URL holds every event the load saw acknowledged."""
    acknowledged = list(read_ledgers(ledgers))
    needs_log = any(a.type == "accepted" for a in acknowledged)
    verdict = difference(
        acknowledged,
        system_events(receiver_url, read_token),
        logged_metas(receiver_url, read_token) if needs_log else (),
    )
    for line in verdict.lines():
        click.echo(line)
    click.echo("verified: nothing acknowledged is missing" if verdict.ok else "NOT VERIFIED")
    sys.exit(0 if verdict.ok else 1)
