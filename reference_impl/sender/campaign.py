"""Sending a campaign: one message per recipient over real SMTP, each failure classified.

The I/O is kept thin. `SmtpSession` drives smtplib one stage at a time so every exception is
turned into an `errors.Failure` naming the stage it happened in; `errors.classify` (pure) turns
that into a PROTOCOL.md section 6 error. Workers (`connections` of them, each with its own
session, reused from message to message) pull recipients from a queue; a failure is recorded and
the campaign goes on. Session set-up that fails in a way a new attempt can fix (a dropped or
refused connection, a 4xx greeting, EHLO or AUTH reply) is retried `retries` times, as a real
platform does with a flaky ESP; a message whose transaction was already under way is never resent,
because the ESP may have accepted it.
"""

from __future__ import annotations

import csv
import queue
import smtplib
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from reference_impl.errors import PlatformError
from reference_impl.protocol.meta import Meta, MetaError
from reference_impl.receiver.store import SentMessage
from reference_impl.sender import errors as e
from reference_impl.sender.address import address_problem
from reference_impl.sender.message import (
    MAX_LABEL,
    Content,
    MessageError,
    build_message,
    to_bytes,
)
from reference_impl.sender.provider import Provider

DEFAULT_CONNECTIONS = 4
DEFAULT_RETRIES = 2
RETRY_BACKOFF = (0.1, 0.3, 1.0)
PLAIN_AUTH_REFUSED = (
    "refusing to send the password over an unencrypted connection: the server offered no"
    " STARTTLS; use scheme 'starttls' or 'smtps'"
)
NO_STARTTLS = "scheme 'starttls' requires STARTTLS, which the server does not offer"
NO_AUTH = "the server does not offer AUTH, but the provider has a username"
NO_PASSWORD = "the environment variable named by password_env is not set"
TIMED_OUT = "no reply within the timeout ({reason}); raise `timeout` if the server is just slow"
NO_GREETING = "the server closed the connection before its greeting: {reason}"
NOT_OPEN = "the session is not open"
UNEXPECTED = "unexpected {kind} in the sender (a bug; please report it): {reason}"
BAD_RECIPIENT = "recipient {problem}"
UNTRUSTED = "{reason}; if the server's certificate is from a private CA, name it in ca_file"
CANNOT_START = "the campaign cannot start: {problems}"


class CampaignError(PlatformError, ValueError):
    """A campaign cannot start (bad label, variant or empty audience); nothing was sent."""


class SendStore(Protocol):
    def record_sent(self, messages: Iterable[SentMessage]) -> None: ...
    def record_send_failure(self, recipient: str, meta: str, error: str, detail: str) -> None: ...
    def min_message_id(self) -> int | None: ...


class SendFailed(PlatformError):
    """Raised inside a session; carries the `Failure` that the campaign records."""

    def __init__(self, failure: e.Failure) -> None:
        super().__init__(f"{failure.stage}: {failure.detail}")
        self.failure = failure


@dataclass(frozen=True, slots=True)
class Result:
    """What happened to one recipient: sent, or the section 6 error and why."""

    index: int
    recipient: str
    meta: str | None
    message_id: int
    error: str | None = None
    failure: e.Failure | None = None


@dataclass
class CampaignReport:
    label: str
    variant: int
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0
    record_errors: list[str] = field(default_factory=list)

    @property
    def sent(self) -> list[Result]:
        return [r for r in self.results if r.error is None]

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.error is not None]

    def errors(self) -> Counter[str]:
        return Counter(r.error for r in self.results if r.error is not None)


def tls_context(provider: Provider, override: ssl.SSLContext | None = None) -> ssl.SSLContext:
    """Certificates are always verified, against `ca_file` when the provider names one."""
    if override is not None:
        return override
    try:
        return ssl.create_default_context(cafile=provider.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise CampaignError(
            f"ca_file: cannot load {provider.ca_file!r} ({exc}); give a PEM file of CA certificates"
        ) from exc


def _reply_failure(stage: str, code: int, text: bytes | str, retryable: bool) -> e.Failure:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return e.Failure(stage, f"{code} {message}".strip(), code, retryable=retryable)


def _timed_out(exc: BaseException | None) -> bool:
    """smtplib turns a read timeout into SMTPServerDisconnected; the cause says it timed out."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _tls_failure(exc: ssl.SSLError) -> e.Failure:
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = UNTRUSTED.format(reason=detail)
    return e.Failure(e.TLS, detail)


def _io_failure(stage: str, exc: BaseException, retryable: bool = True) -> e.Failure:
    if _timed_out(exc):
        return e.Failure(stage, TIMED_OUT.format(reason=exc or "timed out"), None, True)
    if isinstance(exc, smtplib.SMTPResponseException):
        transient = 400 <= exc.smtp_code < 500 or stage in (e.CONNECT, e.GREETING)
        return _reply_failure(stage, exc.smtp_code, exc.smtp_error, retryable and transient)
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return e.Failure(stage, detail, None, retryable=retryable)


class SmtpSession:
    """One SMTP connection through `provider`, reused for many transactions."""

    def __init__(
        self,
        provider: Provider,
        context: ssl.SSLContext,
        password: str | None,
        local_hostname: str = "bounceback.localhost",
    ) -> None:
        self.provider = provider
        self.context = context
        self.password = password
        self.local_hostname = local_hostname
        self.client: smtplib.SMTP | None = None
        self.steps: list[str] = []

    def _step(self, text: str) -> None:
        self.steps.append(text)

    def open(self) -> None:
        """Connect, read the greeting, EHLO, STARTTLS or TLS, AUTH; raise `SendFailed`."""
        p = self.provider
        try:
            client = self._connect()
            self._ehlo(client)
            encrypted = p.scheme == "smtps"
            if p.scheme == "starttls" or (p.scheme == "smtp" and client.has_extn("starttls")):
                if not client.has_extn("starttls"):
                    raise SendFailed(e.Failure(e.TLS, NO_STARTTLS))
                self._starttls(client)
                encrypted = True
            if p.username is not None:
                self._auth(client, encrypted)
        except SendFailed:
            self.close()
            raise

    def _connect(self) -> smtplib.SMTP:
        p = self.provider
        client: smtplib.SMTP
        try:
            if p.scheme == "smtps":
                client = smtplib.SMTP_SSL(
                    local_hostname=self.local_hostname, timeout=p.timeout, context=self.context
                )
            else:
                client = smtplib.SMTP(local_hostname=self.local_hostname, timeout=p.timeout)
            # smtplib names the TLS server after the host given to its constructor only.
            client._host = p.host
            self.client = client
            code, text = client.connect(p.host, p.port)
        except ssl.SSLError as exc:
            raise SendFailed(_tls_failure(exc)) from exc
        except smtplib.SMTPConnectError as exc:
            raise SendFailed(_io_failure(e.GREETING, exc)) from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise SendFailed(
                e.Failure(e.GREETING, NO_GREETING.format(reason=exc), retryable=True)
            ) from exc
        except OSError as exc:
            raise SendFailed(_io_failure(e.CONNECT, exc)) from exc
        tls = " over TLS" if p.scheme == "smtps" else ""
        self._step(f"connected to {p.host}:{p.port}{tls}, greeting {code}")
        if code != 220:
            raise SendFailed(_reply_failure(e.GREETING, code, text, True))
        return client

    def _ehlo(self, client: smtplib.SMTP) -> None:
        try:
            code, text = client.ehlo()
        except (OSError, smtplib.SMTPException) as exc:
            raise SendFailed(_io_failure(e.EHLO, exc)) from exc
        if code != 250:
            raise SendFailed(_reply_failure(e.EHLO, code, text, 400 <= code < 500))
        self._step(f"EHLO {code}, extensions: {', '.join(sorted(client.esmtp_features))}")

    def _starttls(self, client: smtplib.SMTP) -> None:
        try:
            code, _ = client.starttls(context=self.context)
            client.ehlo()
        except ssl.SSLError as exc:
            raise SendFailed(_tls_failure(exc)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise SendFailed(_io_failure(e.TLS, exc)) from exc
        self._step(f"STARTTLS {code}, TLS established")

    def _auth(self, client: smtplib.SMTP, encrypted: bool) -> None:
        p = self.provider
        if not encrypted:
            raise SendFailed(e.Failure(e.AUTH, PLAIN_AUTH_REFUSED))
        if not client.has_extn("auth"):
            raise SendFailed(e.Failure(e.AUTH, NO_AUTH))
        if self.password is None:
            raise SendFailed(e.Failure(e.AUTH, NO_PASSWORD))
        try:
            code, _ = client.login(p.username or "", self.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise SendFailed(_io_failure(e.AUTH, exc)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise SendFailed(_io_failure(e.AUTH, exc)) from exc
        self._step(f"AUTH as {p.username!r}: {code}")

    def send(self, recipient: str, data: bytes) -> None:
        """One transaction: MAIL, RCPT, DATA. A refusal resets the session for the next one."""
        client = self.client
        if client is None:
            raise SendFailed(e.Failure(e.CONNECT, NOT_OPEN))
        stage = e.MAIL
        try:
            code, text = client.mail(self.provider.from_address)
            if code != 250:
                self._refused(e.MAIL, code, text)
            stage = e.RCPT
            code, text = client.rcpt(recipient)
            if code not in (250, 251):
                self._refused(e.RCPT, code, text)
            stage = e.DATA
            code, text = client.data(data)
            if code != 250:
                self._refused(e.DATA, code, text)
        except SendFailed:
            raise
        except smtplib.SMTPDataError as exc:
            self._refused(e.DATA, exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise SendFailed(_io_failure(stage, exc, retryable=False)) from exc

    def _refused(self, stage: str, code: int, text: bytes) -> None:
        failure = _reply_failure(stage, code, text, retryable=False)
        if code == 421 or self.client is None:
            self.close()
        else:
            try:
                self.client.rset()
            except (OSError, smtplib.SMTPException):
                self.close()
        raise SendFailed(failure)

    def quit(self) -> None:
        if self.client is None:
            return
        try:
            code, _ = self.client.quit()
            self._step(f"QUIT {code}")
        except (OSError, smtplib.SMTPException):
            pass
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None


def open_session(
    provider: Provider,
    context: ssl.SSLContext,
    password: str | None,
    retries: int = DEFAULT_RETRIES,
    sleep: Callable[[float], None] = time.sleep,
) -> SmtpSession:
    """An open session, retrying set-up failures that a new attempt could fix."""
    attempt = 0
    while True:
        session = SmtpSession(provider, context, password)
        try:
            session.open()
            return session
        except SendFailed as failed:
            f = failed.failure
            if attempt >= retries or not f.retryable or f.timed_out:
                raise
            sleep(RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)])
            attempt += 1


def first_message_id(store: SendStore | None, now_us: int | None = None) -> int:
    """Message ids are negative (as in the vendor samples) and count down from here.

    Starting from the clock in microseconds keeps ids unique across runs; starting below every id
    the store already holds keeps them unique even for campaigns started within a moment.
    """
    first = -(time.time_ns() // 1000 if now_us is None else now_us)
    lowest = store.min_message_id() if store is not None else None
    return first if lowest is None else min(first, lowest - 1)


def check_campaign(label: str, variant: int, recipients: Sequence[str]) -> None:
    problems = []
    try:
        Meta("x@example.com", 0, 0, 0, label, 0).encode()
    except MetaError as exc:
        problems.append(f"label: {exc.reason}")
    if len(label) > MAX_LABEL:
        problems.append(f"label: at most {MAX_LABEL} characters, got {len(label)}")
    if isinstance(variant, bool) or not isinstance(variant, int) or variant < 0:
        problems.append(f"variant: must be a non-negative integer, got {variant!r}")
    if not recipients:
        problems.append("audience: no recipients")
    if problems:
        raise CampaignError(CANNOT_START.format(problems="; ".join(problems)))


@dataclass
class Campaign:
    """Everything a send needs; `run()` sends and returns the report."""

    provider: Provider
    recipients: Sequence[str]
    label: str
    variant: int = 0
    store: SendStore | None = None
    receiver_url: str | None = None
    content: Content = field(default_factory=Content)
    connections: int = DEFAULT_CONNECTIONS
    retries: int = DEFAULT_RETRIES
    context: ssl.SSLContext | None = None
    password: str | None = None
    on_result: Callable[[Result], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _record_errors: list[str] = field(default_factory=list, repr=False)

    def run(self) -> CampaignReport:
        check_campaign(self.label, self.variant, self.recipients)
        started = time.monotonic()
        first = first_message_id(self.store)
        jobs: queue.SimpleQueue[tuple[int, str] | None] = queue.SimpleQueue()
        workers = max(1, min(self.connections, len(self.recipients)))
        for job in enumerate(self.recipients):
            jobs.put(job)
        for _ in range(workers):
            jobs.put(None)
        results: list[Result | None] = [None] * len(self.recipients)
        context = tls_context(self.provider, self.context)
        password = self.password if self.password is not None else self.provider.secret()
        threads = [
            threading.Thread(
                target=self._worker,
                args=(jobs, results, first, context, password),
                name=f"bounceback-send-{n}",
                daemon=True,
            )
            for n in range(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report = CampaignReport(self.label, self.variant, [r for r in results if r is not None])
        report.seconds = time.monotonic() - started
        report.record_errors = list(self._record_errors)
        return report

    def _worker(
        self,
        jobs: queue.SimpleQueue[tuple[int, str] | None],
        results: list[Result | None],
        first: int,
        context: ssl.SSLContext,
        password: str | None,
    ) -> None:
        session: SmtpSession | None = None
        try:
            while (job := jobs.get()) is not None:
                index, recipient = job
                try:
                    result, session = self._send_one(
                        index, recipient, first - index, session, context, password
                    )
                except Exception as exc:
                    # A bug or an unforeseen error costs this recipient only, never the campaign.
                    if session is not None:
                        session.close()
                    session = None
                    failure = e.Failure(
                        e.SENDER, UNEXPECTED.format(kind=type(exc).__name__, reason=exc)
                    )
                    result = Result(
                        index, recipient, None, first - index, e.classify(failure), failure
                    )
                results[index] = result
                self._record(result)
        finally:
            if session is not None:
                session.quit()

    def _send_one(
        self,
        index: int,
        recipient: str,
        message_id: int,
        session: SmtpSession | None,
        context: ssl.SSLContext,
        password: str | None,
    ) -> tuple[Result, SmtpSession | None]:
        sent_at = int(time.time())
        problem = address_problem(recipient)
        meta_text: str | None = None
        try:
            meta = Meta(
                recipient, self.provider.account_id, sent_at, self.variant, self.label, message_id
            )
            meta_text = meta.encode()
        except MetaError as exc:
            problem = problem or exc.reason
        if problem is not None or meta_text is None:
            failure = e.Failure(e.ADDRESS, BAD_RECIPIENT.format(problem=problem))
            return Result(
                index, recipient, meta_text, message_id, e.classify(failure), failure
            ), session
        try:
            data = to_bytes(
                build_message(
                    self.provider, meta, receiver_url=self.receiver_url, content=self.content
                )
            )
        except MessageError as exc:
            failure = e.Failure(e.DATA, str(exc))
            return Result(
                index, recipient, meta_text, message_id, e.classify(failure), failure
            ), session
        try:
            if session is None or session.client is None:
                session = open_session(self.provider, context, password, self.retries)
            session.send(recipient, data)
        except SendFailed as failed:
            if session is not None and session.client is None:
                session = None
            f = failed.failure
            return Result(index, recipient, meta_text, message_id, e.classify(f), f), session
        return Result(index, recipient, meta_text, message_id), session

    def _record(self, result: Result) -> None:
        """Into the receiver's store at once, so a fast callback finds its message recorded.

        A store that refuses a write is reported in the campaign report, and sending goes on.
        """
        try:
            self._store(result)
        except Exception as exc:
            with self._lock:
                self._record_errors.append(f"{result.recipient}: {type(exc).__name__}: {exc}")
        if self.on_result is not None:
            with self._lock:
                self.on_result(result)

    def _store(self, result: Result) -> None:
        if self.store is not None and result.meta is not None:
            if result.error is None:
                self.store.record_sent(
                    [
                        SentMessage(
                            result.recipient,
                            result.meta,
                            result.message_id,
                            self.label,
                            self.variant,
                            time.time(),
                        )
                    ]
                )
            elif result.failure is not None:
                self.store.record_send_failure(
                    result.recipient, result.meta, result.error, result.failure.detail
                )


def read_audience(path: Path) -> list[str]:
    """Recipients from a CSV file: the `email` column if a header names one, else column one."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    if "email" in header:
        column = header.index("email")
        return [
            row[column].strip() for row in rows[1:] if len(row) > column and row[column].strip()
        ]
    return [row[0].strip() for row in rows if row[0].strip()]
