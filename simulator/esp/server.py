"""`FakeESP`: the whole simulator as a context manager, for tests and for the CLI.

It owns an aiosmtpd `Controller` (its own thread and loop), the spool writer thread, the
callback dispatcher thread and, with `api_port`, the waitress thread serving the read API, the
dashboard and the runtime controls (`web/`). Nothing lives at module level, so tests may run
several at once.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosmtpd
import trustme
from aiosmtpd.controller import Controller

from simulator.errors import SimulatorError
from simulator.esp.controls import Controls
from simulator.esp.dispatcher import (
    POLL_SECONDS,
    RESET_BUSY,
    RESET_LOGGED,
    RESET_WAIT_SECONDS,
    Dispatcher,
)
from simulator.esp.handler import ESPHandler, FaultySMTP
from simulator.esp.panel import ControlPanel
from simulator.esp.preflight import (
    ESPConfigError,
    check_callback_url,
    check_exposure,
    check_port,
)
from simulator.esp.redaction import masked_url
from simulator.esp.scenario import Scenario, load_scenario
from simulator.esp.spool import SpoolReader, SpoolWriter

log = logging.getLogger("simulator")

TLS_MODES = ("none", "smtp", "starttls", "smtps")
OPEN_SERVER = "no SMTP credentials configured: AUTH is optional and any login is accepted"
LOCAL_NAMES = ("127.0.0.1", "localhost")
SERVER_NAME = "fake-esp.bounceback.test"


# aiosmtpd warns on every implicit-TLS session (we set auth_require_tls=False there on purpose,
# #274) and on every AUTH (its own use of a deprecated attribute); neither is actionable.
KNOWN_AIOSMTPD_NOISE = (
    "auth_required == True but auth_require_tls == False",
    "Session.login_data is deprecated",
)


class _KnownNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(KNOWN_AIOSMTPD_NOISE)


# CVE-2024-27305 (SMTP smuggling) and CVE-2024-34083 (STARTTLS injection) are fixed in 1.4.6.
MIN_AIOSMTPD = (1, 4, 6)


def check_aiosmtpd(version: str = aiosmtpd.__version__) -> None:
    """Refuse to run on an aiosmtpd with known SMTP smuggling or STARTTLS injection flaws."""
    found = tuple(int(part) for part in re.findall(r"\d+", version)[:3])
    if found < MIN_AIOSMTPD:
        raise ESPConfigError(
            f"aiosmtpd {version} is too old (CVE-2024-27305, CVE-2024-34083): "
            "install aiosmtpd>=1.4.6"
        )


class ESPTimeout(SimulatorError, TimeoutError):
    """The ESP did not finish delivering callbacks in time."""


class _Controller(Controller):
    """aiosmtpd Controller that builds `FaultySMTP` and supports port 0 (a free port).

    `factory()` is aiosmtpd's public extension point. `_trigger_server()` is private-named but is
    the abstract method `BaseThreadedController` documents as "overridden by subclasses"; it is
    the only place to learn the port: aiosmtpd has no port-0 support (its own version connects to
    port 0 and fails) and no way to pass a bound socket. Checked against aiosmtpd 1.4.6 and its
    main branch (still 1.4.6), which is why pyproject.toml pins `aiosmtpd>=1.4.6,<1.5`.
    """

    def factory(self) -> FaultySMTP:
        kwargs = {"loop": self.loop, **self.SMTP_kwargs}
        if kwargs.get("auth_required") and not kwargs.get("auth_require_tls", True):
            with warnings.catch_warnings():
                # Implicit TLS needs auth_require_tls=False (aiosmtpd #274), which warns.
                warnings.simplefilter("ignore")
                return FaultySMTP(self.handler, **kwargs)
        # Otherwise nothing warns; catch_warnings per connection would cost (and races threads).
        return FaultySMTP(self.handler, **kwargs)

    def _trigger_server(self) -> None:
        # `server` is the asyncio Server aiosmtpd's thread bound; its socket knows the real port.
        # Over implicit TLS connecting is enough to invoke the factory (asyncio calls it on
        # accept), so no handshake is needed to wait for the greeting.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        with socket.create_connection((self.hostname, self.port), 1.0) as sock:
            if self.ssl_context is None:
                sock.recv(1024)


def server_tls_context(
    cert: tuple[str | Path, str | Path] | None,
) -> tuple[ssl.SSLContext, trustme.CA | None]:
    """A server context from cert and key files, or from a throwaway CA made on the fly."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if cert is not None:
        try:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        except (OSError, ssl.SSLError) as exc:
            raise ESPConfigError(
                f"cannot load TLS certificate {cert[0]} with key {cert[1]}: {exc}"
            ) from exc
        return context, None
    ca = trustme.CA()
    ca.issue_cert(*LOCAL_NAMES).configure_cert(context)
    return context, ca


class FakeESP:
    """Run the fake ESP: `with FakeESP("smoke", url) as esp: ... esp.wait_delivered()`."""

    def __init__(
        self,
        scenario: Scenario | str | Path,
        callback_url: str,
        *,
        seed: int = 0,
        spool: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: str = "smtp",
        cert: tuple[str | Path, str | Path] | None = None,
        credentials: dict[str, str] | None = None,
        allow_auth_without_tls: bool = False,
        retry_schedule: tuple[float, ...] | None = None,
        batch_delay: float | None = None,
        callback_timeout: float | None = None,
        poll_seconds: float = POLL_SECONDS,
        smtp_timeout: float = 300.0,
        api_port: int | None = None,
        api_host: str | None = None,
        read_token: str | None = None,
        public_read: bool = False,
    ) -> None:
        check_aiosmtpd()
        if tls not in TLS_MODES:
            raise ESPConfigError(f"tls={tls!r}: choose one of {', '.join(TLS_MODES)}")
        if credentials and tls == "none" and not allow_auth_without_tls:
            raise ESPConfigError(
                "credentials are configured but TLS is off, so AUTH could never succeed: "
                "use tls='smtp', 'starttls' or 'smtps', or allow_auth_without_tls=True"
            )
        check_callback_url(callback_url)
        self.api_host = api_host or host
        self.api_port = api_port
        self.read_token = read_token
        if api_port is not None:
            check_exposure(self.api_host, read_token, public_read)
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        callbacks = self.scenario.callbacks
        if retry_schedule is not None:
            callbacks = replace(callbacks, retry_schedule=tuple(retry_schedule))
        if batch_delay is not None:
            callbacks = replace(callbacks, delay=batch_delay)
        if callback_timeout is not None:
            callbacks = replace(callbacks, timeout=callback_timeout)
        self.scenario = replace(self.scenario, callbacks=callbacks)
        self.callback_url = callback_url
        self.seed = seed
        self.host = host
        self._requested_port = port
        self.tls = tls
        self.credentials = dict(credentials or {})
        self.allow_auth_without_tls = allow_auth_without_tls
        self.poll_seconds = poll_seconds
        self.smtp_timeout = smtp_timeout
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if spool is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="bounceback-esp-")
            spool = Path(self._tempdir.name) / "spool.sqlite3"
        self.spool_path = Path(spool)
        self.tls_context: ssl.SSLContext | None = None
        self.ca: trustme.CA | None = None
        if tls != "none":
            self.tls_context, self.ca = server_tls_context(cert)
        self._controller: _Controller | None = None
        self._writer: SpoolWriter | None = None
        self._dispatcher: Dispatcher | None = None
        self._reader: SpoolReader | None = None
        self._web: Any = None
        self.panel: ControlPanel | None = None

    @property
    def port(self) -> int:
        if self._controller is None:
            raise ESPConfigError("the fake ESP is not running: use it as a context manager")
        return self._controller.port

    def client_tls_context(self) -> ssl.SSLContext:
        """A client context trusting this ESP's certificate (on-the-fly CA only)."""
        context = ssl.create_default_context()
        if self.ca is None:
            raise ESPConfigError("no on-the-fly CA: the certificate came from files, trust that")
        self.ca.configure_trust(context)
        return context

    def _smtp_kwargs(self) -> dict[str, Any]:
        implicit = self.tls == "smtps"
        return {
            "data_size_limit": self.scenario.smtp.max_message_size,
            "enable_SMTPUTF8": True,
            "decode_data": False,
            "server_hostname": SERVER_NAME,
            "ident": "bounceback fake ESP",
            "tls_context": None if implicit else self.tls_context,
            "require_starttls": self.tls == "starttls",
            "timeout": self.smtp_timeout,
            "auth_required": bool(self.credentials),
            # On implicit TLS the session is already encrypted; aiosmtpd only knows STARTTLS.
            "auth_require_tls": not (implicit or self.allow_auth_without_tls),
        }

    def start(self) -> FakeESP:
        aiosmtpd_log = logging.getLogger("mail.log")
        if not any(isinstance(f, _KnownNoise) for f in aiosmtpd_log.filters):
            aiosmtpd_log.addFilter(_KnownNoise())
        # Before any thread starts: aiosmtpd would only report a taken port after its ready timeout.
        check_port(self.host, self._requested_port, "SMTP port")
        if self.api_port is not None:
            check_port(self.api_host, self.api_port, "API port")
        if not self.credentials:
            log.warning(OPEN_SERVER)
        self._dispatcher = Dispatcher(
            self.spool_path,
            self.callback_url,
            self.scenario.callbacks,
            self.seed,
            self.poll_seconds,
        )
        self._writer = SpoolWriter(self.spool_path, on_commit=self._dispatcher.wake)
        handler = ESPHandler(self.scenario, self.seed, self._writer, self.credentials)
        self._controller = _Controller(
            handler,
            hostname=self.host,
            port=self._requested_port,
            ssl_context=self.tls_context if self.tls == "smtps" else None,
            authenticator=handler.authenticate,
            **self._smtp_kwargs(),
        )
        try:
            self._controller.start()
        except OSError as exc:
            # Taken between the check above and the bind: the same one-line error, nothing left.
            # No thread to stop: the controller's ended, the dispatcher's never started.
            self._controller = self._dispatcher = None
            self.stop()
            raise ESPConfigError(
                f"cannot listen on {self.host}:{self._requested_port}: {exc.strerror or exc}"
            ) from exc
        self.panel = ControlPanel(
            Controls.of(self.scenario), (handler.apply_controls, self._dispatcher.apply_controls)
        )
        self._dispatcher.start()
        self._reader = SpoolReader(self.spool_path)
        if self.api_port is not None:
            self._start_web()
        log.info(
            "fake ESP listening on %s:%d (tls=%s), scenario %s, callbacks to %s, spool %s",
            self.host,
            self.port,
            self.tls,
            self.scenario.name,
            self.callback_url,
            self.spool_path,
        )
        return self

    def _start_web(self) -> None:
        """The read API, dashboard and controls on their waitress thread."""
        from simulator.esp.web.app import WebConfig, create_app
        from simulator.esp.web.guard import is_loopback
        from simulator.esp.web.server import WebServer

        assert self._dispatcher is not None and self.api_port is not None
        config = WebConfig(
            spool_path=self.spool_path,
            read_token=self.read_token,
            exposed=not is_loopback(self.api_host),
            panel=self.panel,
            reset=self._reset_spool,
            title=f"fake ESP: scenario {self.scenario.name}, callbacks to "
            f"{masked_url(self.callback_url)}",
        )
        try:
            self._web = WebServer(create_app(config), self.api_host, self.api_port).start()
        except OSError as exc:
            self.stop()
            raise ESPConfigError(
                f"--api-port {self.api_host}:{self.api_port} cannot be listened on "
                f"({exc.strerror or exc}); choose another --api-port"
            ) from exc

    @property
    def api_url(self) -> str:
        """Where the read API, the dashboard (`/`) and the controls (`/api/...`) answer."""
        if self._web is None:
            raise ESPConfigError("no API: start the fake ESP with api_port (0 = a free port)")
        return str(self._web.url)

    def _reset_spool(self, source: str) -> dict[str, int] | None:
        """Empty the spool between two dispatcher passes and log it with the control changes;
        None (nothing removed) when a callback POST stayed in flight too long."""
        if self._dispatcher is None or self.panel is None:
            raise ESPConfigError("the fake ESP is not running: use it as a context manager")
        removed = self._dispatcher.reset(RESET_WAIT_SECONDS)
        if removed is not None:
            shown = ", ".join(f"{count} {table}" for table, count in removed.items())
            self.panel.record([RESET_LOGGED.format(removed=shown)], source)
        return removed

    def reset(self) -> dict[str, int]:
        """Empty the spool between tests, as `DELETE /api/state` does; the rows removed."""
        removed = self._reset_spool("python")
        if removed is None:
            raise ESPTimeout(RESET_BUSY.format(seconds=RESET_WAIT_SECONDS))
        return removed

    def stop(self) -> None:
        if self._web is not None:
            self._web.stop()
            self._web = None
        if self._controller is not None:
            self._controller.stop()
        if self._writer is not None:
            self._writer.close()
        if self._dispatcher is not None:
            self._dispatcher.stop()
        if self._reader is not None:
            self._reader.close()
        self._controller = self._writer = self._dispatcher = self._reader = None
        if self._tempdir is not None:
            self._tempdir.cleanup()

    def __enter__(self) -> FakeESP:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def reader(self) -> SpoolReader:
        if self._reader is None:
            raise ESPConfigError("the fake ESP is not running: use it as a context manager")
        return self._reader

    def stats(self) -> dict[str, int]:
        return self.reader().stats()

    def wait_delivered(self, timeout: float = 30.0, messages: int | None = None) -> dict[str, int]:
        """Block until `messages` mails are spooled (if given) and nothing is pending."""
        deadline = time.monotonic() + timeout
        reader = self.reader()
        while time.monotonic() < deadline:
            stats = reader.stats()
            if (messages is None or stats["messages"] >= messages) and not stats["outstanding"]:
                return stats
            time.sleep(0.02)
        raise ESPTimeout(
            f"callbacks still pending after {timeout}s: {reader.stats()}; "
            "is the callback URL reachable, and is the retry schedule short enough for a test?"
        )
