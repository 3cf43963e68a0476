"""The probe sent through a running ESP, and its verdicts read back: `provider check
--deliverability --esp HOST:PORT --esp-api URL`. The thin I/O around `checks`.

The probe goes over real SMTP, signed by the session as a campaign's message is. The fake ESP
stores each message it judged with the RFC 8601 header value it would add
(`authentication_results` in `GET /messages`); the message is found by its meta, which is unique
per probe (its message id counts down from the clock, as a campaign's does).
"""

from __future__ import annotations

import time
from dataclasses import replace

import httpx

from reference_impl.errors import PlatformError
from reference_impl.sender import errors as e
from reference_impl.sender.deliverability.authres import (
    AuthenticationResults,
    parse_authentication_results,
)
from reference_impl.sender.deliverability.probe import Probe
from reference_impl.sender.provider import Provider
from reference_impl.sender.session import SendFailed, SessionUnavailable, SmtpSession, tls_context

__all__ = ["WAIT_SECONDS", "EspProbeError", "fetch_results", "send_probe"]

# How long the ESP may take to list the probe after accepting it (it spools asynchronously).
WAIT_SECONDS = 10.0
POLL_SECONDS = 0.2
REFUSED = "the ESP at {where} did not take the probe: {reason}"
# Stages whose permanent refusal is a verdict on the message, not on the session's setup.
MESSAGE_STAGES = (e.MAIL, e.RCPT, e.DATA)
API_FAILED = "cannot read {url}: {reason}; is --esp-api the fake ESP's API URL?"
NOT_LISTED = "the ESP accepted the probe but {url} did not list it within {seconds:g}s"
NOT_JUDGED = (
    "the ESP stored the probe without Authentication-Results: its scenario needs an"
    " [authentication] table (or use --zone with the DNS records)"
)


class EspProbeError(PlatformError, ValueError):
    """The probe could not be sent through the ESP, or its verdicts could not be read back."""


def send_probe(provider: Provider, probe: Probe, host: str, port: int) -> tuple[str, str] | None:
    """One session to `host:port` with the provider's other settings (scheme, AUTH, ca_file),
    sending the probe's unsigned bytes, which the session signs as it signs a campaign's.

    None when the ESP took the probe; the stage and reply when it refused it for good (a 5xx at
    MAIL, RCPT or DATA): that is the ESP's verdict on the message, e.g. `550 5.7.26` naming a
    bulk-sender rule, and is reported as such. A session that cannot be set up
    (`SessionUnavailable`) and a temporary refusal, timeout or dropped connection
    (`EspProbeError`) say nothing about the message: those are for the operator."""
    target = replace(provider, host=host, port=port)
    session = SmtpSession(target, tls_context(target), target.secret())
    where = f"{host}:{port}"
    try:
        session.open()
    except SendFailed as exc:
        raise SessionUnavailable(f"the ESP at {where}", exc.failure) from exc
    try:
        session.send(probe.to, probe.unsigned)
    except SendFailed as exc:
        failure = exc.failure
        if failure.stage in MESSAGE_STAGES and failure.code is not None and failure.code >= 500:
            return failure.stage, failure.detail
        raise EspProbeError(REFUSED.format(where=where, reason=failure.describe())) from exc
    finally:
        session.quit()
    return None


def fetch_results(
    api_url: str, meta_text: str, wait: float = WAIT_SECONDS
) -> AuthenticationResults:
    """The ESP's Authentication-Results for the message carrying `meta_text`, polled from
    `GET {api_url}/messages` until it is listed or `wait` seconds pass."""
    url = f"{api_url.rstrip('/')}/messages"
    deadline = time.monotonic() + wait
    with httpx.Client(timeout=5.0) as client:
        while True:
            try:
                response = client.get(url, params={"limit": 100})
                response.raise_for_status()
                messages = response.json()["messages"]
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                raise EspProbeError(API_FAILED.format(url=url, reason=exc)) from exc
            found = [m for m in messages if isinstance(m, dict) and m.get("meta") == meta_text]
            if found:
                value = found[0].get("authentication_results")
                if not value:
                    raise EspProbeError(NOT_JUDGED)
                return parse_authentication_results(str(value))
            if time.monotonic() >= deadline:
                raise EspProbeError(NOT_LISTED.format(url=url, seconds=wait))
            time.sleep(POLL_SECONDS)
