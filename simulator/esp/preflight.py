"""Operator settings checked before anything starts: ports, the spool's folder, the callback URL.

A taken port, a spool in a folder that does not exist or a callback URL without `http://` are an
operator's typos, not bugs: each is found here, before a server thread, a spool file or a log
line exists, and told as one sentence naming the option and what to do (the CLI prints it on one
line and exits 2). The servers still fail cleanly if a port is taken between this check and
their bind (`FakeESP.start` turns that into the same error); this only makes the usual case
immediate and complete.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from simulator.errors import SimulatorError
from simulator.esp.web.guard import is_loopback

__all__ = [
    "CALLBACK_SCHEMES",
    "ESPConfigError",
    "check_callback_url",
    "check_exposure",
    "check_port",
    "check_spool",
    "preflight",
]

CALLBACK_SCHEMES = ("http", "https")
PORT_TAKEN = "{option} {host}:{port} is already in use; choose another {option} (0 = a free port)"
PORT_UNUSABLE = "{option} {host}:{port} cannot be listened on ({reason}); {fix}"
SAME_PORT = "--smtp-port and --api-port are both {port}; give them different ports"
NO_FOLDER = "--spool {path}: the folder {folder} does not exist; create it or choose another path"
NOT_A_FOLDER = "--spool {path}: {folder} is not a folder; choose another path"
NOT_WRITABLE = "--spool {path}: {what} is not writable; choose a path you can write to"
BAD_URL = "--callback-url {url!r}: {reason}; give a full URL such as {example}"
EXPOSED = (
    "--api-host {host} is reachable from other machines and the spool holds recipients' "
    "addresses: give --read-token TOKEN (or --public-read to serve it to anyone)"
)


class ESPConfigError(SimulatorError, ValueError):
    """The fake ESP was configured in a way that cannot work; the message says how to fix it."""


def check_callback_url(url: str) -> None:
    """Refuse a callback URL the dispatcher could never POST to, naming what is missing.

    `127.0.0.1:8080/callback` parses as a URL with no scheme (or with `127.0.0.1` or `localhost`
    as one), so every POST would fail and the run would only retry: it is refused at start,
    with the URL it most likely means.
    """
    parts = urlsplit(url.strip())
    example = "http://127.0.0.1:8080/callback"
    if parts.scheme.lower() not in CALLBACK_SCHEMES:
        if "://" not in url:
            reason = "has no scheme"
            example = f"http://{url.strip()}"
        else:
            reason = f"scheme {parts.scheme!r} is not http or https"
        raise ESPConfigError(BAD_URL.format(url=url, reason=reason, example=example))
    if not parts.hostname:
        raise ESPConfigError(BAD_URL.format(url=url, reason="has no host", example=example))
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise ESPConfigError(BAD_URL.format(url=url, reason=str(exc), example=example)) from exc


def check_port(host: str, port: int, option: str) -> None:
    """Refuse a port another program listens on, or an address this host does not have.

    Binds a probe socket the way the servers will (SO_REUSEADDR, as asyncio and http.server do),
    so a port in TIME_WAIT is not reported taken; port 0 always works.
    """
    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ESPConfigError(
            PORT_UNUSABLE.format(
                option=option,
                host=host,
                port=port,
                reason=exc.strerror,
                fix="give an address or name of this host",
            )
        ) from exc
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ESPConfigError(
                        PORT_TAKEN.format(option=option, host=host, port=port)
                    ) from exc
                fix = (
                    "use a port above 1023 or run with the rights to bind it"
                    if exc.errno == errno.EACCES
                    else "give an address of this host"
                )
                raise ESPConfigError(
                    PORT_UNUSABLE.format(
                        option=option, host=host, port=port, reason=exc.strerror, fix=fix
                    )
                ) from exc


def check_exposure(api_host: str, read_token: str | None, public_read: bool) -> None:
    """Refuse to serve the read API and dashboard beyond loopback without a token, unless the
    operator says, with `--public-read`, that anyone may read them."""
    if not is_loopback(api_host) and read_token is None and not public_read:
        raise ESPConfigError(EXPOSED.format(host=api_host))


def check_spool(path: Path) -> None:
    """Refuse a spool path whose folder is missing or read-only, before SQLite says it vaguely."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise ESPConfigError(NO_FOLDER.format(path=path, folder=folder))
    if not folder.is_dir():
        raise ESPConfigError(NOT_A_FOLDER.format(path=path, folder=folder))
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ESPConfigError(NOT_WRITABLE.format(path=path, what="the file"))
    if not os.access(folder, os.W_OK | os.X_OK):
        # SQLite writes its WAL and journal files next to the spool.
        raise ESPConfigError(NOT_WRITABLE.format(path=path, what=f"its folder {folder}"))


def preflight(
    *,
    host: str,
    smtp_port: int,
    api_port: int | None,
    spool: Path,
    callback_url: str,
    api_host: str | None = None,
    read_token: str | None = None,
    public_read: bool = False,
) -> None:
    """Every operator check of `bounceback esp`, in the order the options are usually typed."""
    check_callback_url(callback_url)
    check_spool(spool)
    if api_port is not None:
        check_exposure(api_host or host, read_token, public_read)
    if api_port is not None and api_port == smtp_port and api_port != 0:
        raise ESPConfigError(SAME_PORT.format(port=api_port))
    check_port(host, smtp_port, "--smtp-port")
    if api_port is not None:
        check_port(api_host or host, api_port, "--api-port")
