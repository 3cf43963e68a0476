"""Sending the probes through the vendor's SMTP server named by the plan's provider file.

One message per probe, each with its own `X-CleverTap_META`. The header is written unfolded up to
the 998-character line limit (RFC 5322 2.1.1); a longer one cannot fit a line and has no
whitespace to fold at, so Python's generator carries it as RFC 2047 encoded-words, which the vendor
must decode to echo the meta byte-exact.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path
from typing import Any

from reference_impl.certify.plan import Plan
from reference_impl.certify.recording import SentProbe
from reference_impl.meta import HEADER_NAME

SCHEMES = ("smtp", "starttls", "smtps")
DEFAULT_TIMEOUT = 30.0
POLICY = SMTP.clone(max_line_length=998)
SUBJECT = "bounceback certification probe {id}"
BODY = (
    "This message is a probe of a bounceback ESP certification run ({id}).\n"
    "Its recipient is meant to trigger: {expect}.\n"
)


class ProviderFileError(ValueError):
    """The plan's provider file is missing or invalid; the message names the file and key."""


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    scheme: str
    from_address: str
    from_name: str = ""
    username: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT


def parse_smtp_target(data: dict[str, Any], source: str) -> SmtpTarget:
    """Read the SMTP fields of a provider file (one provider, or the first of `[[provider]]`)."""
    if isinstance(data.get("provider"), list) and data["provider"]:
        data = data["provider"][0]
    problems: list[str] = []
    host = data.get("host")
    if not isinstance(host, str) or not host:
        problems.append("host: required, a hostname or IP address")
    port = data.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append(f"port: must be an integer from 1 to 65535, got {port!r}")
    scheme = data.get("scheme", "smtp")
    if scheme not in SCHEMES:
        problems.append(f"scheme: must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    sender = data.get("from_address")
    if not isinstance(sender, str) or "@" not in sender:
        problems.append(f"from_address: must be an email address, got {sender!r}")
    password = data.get("password")
    env = data.get("password_env")
    if env is not None:
        password = os.environ.get(env) if isinstance(env, str) else None
        if password is None:
            problems.append(f"password_env: environment variable {env!r} is not set")
    if problems:
        raise ProviderFileError(f"provider file {source}: " + "; ".join(problems))
    return SmtpTarget(
        host,
        port,
        scheme,
        sender,
        str(data.get("from_name") or data.get("default_from_name") or ""),
        data.get("username") or None,
        password,
        float(data.get("timeout", DEFAULT_TIMEOUT)),
    )


def load_smtp_target(path: Path) -> SmtpTarget:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProviderFileError(f"provider file {path}: cannot be read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProviderFileError(f"provider file {path}: not valid TOML ({exc})") from exc
    return parse_smtp_target(data, str(path))


def probe_message(target: SmtpTarget, probe: SentProbe) -> EmailMessage:
    """The probe as a message whose meta header survives the trip (see the module docstring)."""
    message = EmailMessage(policy=POLICY)
    message["From"] = formataddr((target.from_name, target.from_address))
    message["To"] = probe.to
    message["Subject"] = SUBJECT.format(id=probe.id)
    message["Date"] = formatdate(probe.sent_at, usegmt=True)
    message["Message-ID"] = make_msgid("certify")
    message[HEADER_NAME] = probe.meta
    message.set_content(BODY.format(id=probe.id, expect=probe.expect))
    return message


def _connect(target: SmtpTarget) -> smtplib.SMTP:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if target.scheme == "smtps":
        client = smtplib.SMTP_SSL(target.host, target.port, timeout=target.timeout, context=context)
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=target.timeout)
    client.ehlo()
    if target.scheme == "starttls":
        client.starttls(context=context)
        client.ehlo()
    if target.username:
        client.login(target.username, target.password or "")
    return client


def send_probes(
    target: SmtpTarget,
    probes: Sequence[SentProbe],
    on_sent: Callable[[SentProbe, str | None], None] | None = None,
) -> dict[str, str | None]:
    """Send every probe over one reused connection; one refusal never stops the others."""
    results: dict[str, str | None] = {}
    client: smtplib.SMTP | None = None
    try:
        for probe in probes:
            error: str | None = None
            try:
                if client is None:
                    client = _connect(target)
                client.send_message(probe_message(target, probe), target.from_address, [probe.to])
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = exc.recipients[probe.to]
                error = f"{code} {text.decode(errors='replace')}"
            except smtplib.SMTPResponseException as exc:
                error = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace')}"
            except (OSError, smtplib.SMTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
                if client is not None:
                    client.close()
                client = None
            results[probe.id] = error
            if on_sent is not None:
                on_sent(probe, error)
    finally:
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()
    return results


OnSent = Callable[[SentProbe, str | None], None]
SendProbes = Callable[[Sequence[SentProbe], OnSent], dict[str, str | None]]
"""Sends each probe as one message, reporting each; returns, per probe id, None or the error."""


def provider_sender(plan: Plan) -> SendProbes:
    """The send function for a live run, from the plan's provider file."""
    if plan.provider is None:
        raise ProviderFileError(
            f"plan {plan.source}: a live run needs `provider`, the vendor's SMTP settings file"
        )
    target = load_smtp_target(plan.provider)
    return lambda probes, on_sent: send_probes(target, probes, on_sent)
