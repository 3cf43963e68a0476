"""One SMTP session through a provider: connect, greeting, EHLO, TLS, AUTH, then transactions.

The I/O is kept thin. `SmtpSession` drives smtplib through set-up (connect, EHLO, STARTTLS,
AUTH) one stage at a time, and runs each mail transaction itself over smtplib's socket, as the pure
`transaction.Transaction` says (MAIL, RCPT and DATA pipelined where the server offers PIPELINING;
smtplib's one round trip per command cost more CPU than the message). Every exception is turned
into an `errors.Failure` naming the stage it happened in; `errors.classify` (pure) turns that into
a PROTOCOL.md section 6 error. The campaign pool (`campaign`) and certification (`certify.smtp`)
both send through it, so the vendor is certified against what the platform really sends.

Section 6 tells a stall from a drop, the greeting included: a server that says nothing within the
provider's `timeout` is `SMTP timeout`, and a new attempt would only wait again, so it is not
retried; a server that closes the connection before its greeting is `SMTP connection error`, which
a new connection may fix. Session set-up that fails in a way a new attempt can fix (a dropped or
refused connection, a 4xx greeting, EHLO or AUTH reply) is retried by `open_session`; a message
whose transaction was already under way is never resent, because the ESP may have accepted it.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable

from reference_impl.errors import PlatformError
from reference_impl.sender import errors as e
from reference_impl.sender.address import is_plain
from reference_impl.sender.dkim import DkimError, sign_message
from reference_impl.sender.provider import Provider
from reference_impl.sender.transaction import (
    LINE_TOO_LONG,
    Refusal,
    Reply,
    ReplyParser,
    Transaction,
    command,
    mail_command,
)

__all__ = [
    "DEFAULT_RETRIES",
    "SendFailed",
    "SessionError",
    "SessionUnavailable",
    "SmtpSession",
    "open_session",
    "tls_context",
]

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
NO_GREETING_IN_TIME = (
    "no greeting within {timeout:g} s (the provider's timeout); raise `timeout` if the server is"
    " just slow"
)
NO_GREETING = "the server closed the connection before its greeting: {reason}"
NOT_OPEN = "the session is not open"
UNTRUSTED = "{reason}; if the server's certificate is from a private CA, name it in ca_file"
UNREACHABLE = "could not reach {where}: {reason}"
NO_SESSION = "could not open an SMTP session with {where}: {reason}"
# The wording of smtplib's own errors, so a failure reads the same whoever read the reply.
DISCONNECTED = "Connection unexpectedly closed"
NOT_CONNECTED = "please run connect() first"
READ_SIZE = 65536
RSET = command("rset")
BAD_CA_FILE = "ca_file: cannot load {path!r} ({reason}); give a PEM file of CA certificates"


class SessionError(PlatformError, ValueError):
    """A session cannot be set up from these settings (an unusable ca_file); nothing was sent."""


class SendFailed(PlatformError):
    """Raised inside a session; carries the `Failure` that the campaign records."""

    def __init__(self, failure: e.Failure) -> None:
        super().__init__(f"{failure.stage}: {failure.detail}")
        self.failure = failure


class SessionUnavailable(PlatformError):
    """The server could not be reached, or would not open a session; nothing was sent.

    For a command sending one message (a test email, a certification's first probe) this is the
    operator's problem to fix (host, port, network, scheme, ca_file, credentials), not a verdict.
    """

    def __init__(self, where: str, failure: e.Failure) -> None:
        template = UNREACHABLE if failure.stage in (e.CONNECT, e.GREETING) else NO_SESSION
        super().__init__(template.format(where=where, reason=failure.describe()))
        self.failure = failure


def tls_context(provider: Provider, override: ssl.SSLContext | None = None) -> ssl.SSLContext:
    """Certificates are always verified, against `ca_file` when the provider names one."""
    if override is not None:
        return override
    try:
        return ssl.create_default_context(cafile=provider.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise SessionError(BAD_CA_FILE.format(path=provider.ca_file, reason=exc)) from exc


def _reply_failure(stage: str, code: int, text: bytes | str, retryable: bool) -> e.Failure:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return e.Failure(stage, f"{code} {message}".strip(), code, retryable=retryable)


def _refusal_failure(refusal: Refusal) -> e.Failure:
    return _reply_failure(refusal.stage, refusal.reply.code, refusal.reply.text, retryable=False)


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
    """A refused certificate or protocol is final; a server that closed the connection during
    the handshake (with `smtps`, before its greeting) dropped it, which a new connection may fix."""
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = UNTRUSTED.format(reason=detail)
    return e.Failure(e.TLS, detail, retryable=isinstance(exc, ssl.SSLEOFError))


def _io_failure(stage: str, exc: BaseException, retryable: bool = True) -> e.Failure:
    if _timed_out(exc):
        return e.Failure(stage, TIMED_OUT.format(reason=exc or "timed out"), timed_out=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        transient = 400 <= exc.smtp_code < 500 or stage in (e.CONNECT, e.GREETING)
        return _reply_failure(stage, exc.smtp_code, exc.smtp_error, retryable and transient)
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return e.Failure(stage, detail, None, retryable=retryable)


def _path(address: str) -> str:
    """The command's path as smtplib's `mail`/`rcpt` write it; a plain address skips its parser.

    Parsing each address again (`smtplib.quoteaddr`) cost more CPU than writing the message.
    """
    return f"<{address}>" if is_plain(address) else smtplib.quoteaddr(address)


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
        self.pipelining = False
        self._parser = ReplyParser()
        self._mail = mail_command(_path(provider.from_address))

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
            self.pipelining = client.has_extn("pipelining")
            self._parser = ReplyParser()
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
            # smtplib reports a greeting that never came and one cut off alike; the cause tells.
            if _timed_out(exc):
                detail = NO_GREETING_IN_TIME.format(timeout=p.timeout)
                raise SendFailed(e.Failure(e.GREETING, detail, timed_out=True)) from exc
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
        """One transaction: MAIL, RCPT, DATA. A refusal resets the session for the next one.

        The bytes are final here, whoever built them, so this is where they are DKIM-signed.
        MAIL, RCPT and DATA go as one group where the server offers PIPELINING (`transaction`).
        """
        client = self.client
        if client is None:
            raise SendFailed(e.Failure(e.CONNECT, NOT_OPEN))
        try:
            data = sign_message(self.provider, data)
        except DkimError as exc:
            raise SendFailed(e.Failure(e.SENDER, str(exc))) from exc
        transaction = Transaction(self._mail, _path(recipient), data, pipelining=self.pipelining)
        try:
            in_step = self._run(client, transaction)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            if transaction.refusal is not None:
                raise SendFailed(_refusal_failure(transaction.refusal)) from exc
            raise SendFailed(_io_failure(transaction.stage, exc, retryable=False)) from exc
        if transaction.refusal is not None:
            self._reset(transaction.closing or not in_step)
            raise SendFailed(_refusal_failure(transaction.refusal))
        if not in_step:
            self.close()

    def _run(self, client: smtplib.SMTP, transaction: Transaction) -> bool:
        """Write and read until the transaction is done; False if the server said more than it
        was asked, which the next transaction would take for its own replies."""
        client.send(transaction.start())
        while True:
            replies = self._replies(client)
            for n, reply in enumerate(replies):
                if reply is LINE_TOO_LONG:
                    raise smtplib.SMTPResponseException(reply.code, reply.text)
                if out := transaction.receive(reply):
                    client.send(out)
                if transaction.done:
                    return n + 1 == len(replies) and not self._parser.pending

    def _replies(self, client: smtplib.SMTP) -> list[Reply]:
        """The replies the next read completes, read as smtplib's `getreply` reads them."""
        sock = client.sock
        if sock is None:
            raise smtplib.SMTPServerDisconnected(NOT_CONNECTED)
        while True:
            try:
                chunk = sock.recv(READ_SIZE)
            except OSError as exc:
                raise smtplib.SMTPServerDisconnected(f"{DISCONNECTED}: {exc}") from exc
            if not chunk:
                raise smtplib.SMTPServerDisconnected(DISCONNECTED)
            if replies := self._parser.feed(chunk):
                return replies

    def _reset(self, closing: bool) -> None:
        """RSET after a refusal, so the session serves the next recipient; closed if it cannot."""
        if closing or self.client is None:
            self.close()
            return
        try:
            self.client.send(RSET)
            in_step = len(self._replies(self.client)) == 1 and not self._parser.pending
        except (OSError, smtplib.SMTPException):
            in_step = False
        if not in_step:
            self.close()

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
