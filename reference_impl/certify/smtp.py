"""Sending the probes through the vendor's SMTP server with the project's sender.

The provider file is the sender's (`reference_impl.sender.provider`), the messages are the sender's
campaign messages (`build_message`: From, Reply-To, Message-ID, the meta written unfolded,
List-Unsubscribe from the preference center) and they travel over the sender's `SmtpSession`,
so the vendor is certified against what the platform really sends.

One exception, on purpose: a meta whose header line is over RFC 5322's 998 characters. The sender
refuses to build it (it cannot travel unfolded), but the certification must probe it, so such a
probe is written as Python's generator writes any over-long header with no whitespace to fold at:
RFC 2047 encoded-words on continuation lines. The vendor must decode them to echo the meta
byte-exact; `meta-byte-exact` shows whether it did.

And a probe with `relay_fold` arrives as a relay passes such a line on: Postfix's
`smtp_line_length_limit` (998) breaks a longer line by inserting CRLF and a space. A meta never
holds whitespace, so the vendor must remove it; `meta-whole-after-relay` shows whether it did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from email.message import EmailMessage

from reference_impl.certify.plan import Plan
from reference_impl.certify.recording import SentProbe
from reference_impl.errors import PlatformError
from reference_impl.protocol.meta import HEADER_NAME, Meta, parse_meta
from reference_impl.sender.message import Content, MessageError, build_message, to_bytes
from reference_impl.sender.provider import Provider, load_providers, select_provider
from reference_impl.sender.session import (
    SendFailed,
    SessionUnavailable,
    SmtpSession,
    open_session,
    tls_context,
)

__all__ = [
    "OnSent",
    "ProbeProviderError",
    "SendProbes",
    "VendorUnreachable",
    "plan_provider",
    "provider_sender",
    "relay_folded",
    "send_probes",
]

SUBJECT = "bounceback certification probe {id}"
BODY = (
    "This message is a probe of a bounceback ESP certification run.\n"
    "Its recipient is meant to trigger: {expect}.\n"
)

SHORT_LABEL = "probe"
RELAY_LINE_LIMIT = 998
VENDOR = "the vendor's SMTP at {host}:{port}"

OnSent = Callable[[SentProbe, str | None], None]
SendProbes = Callable[[Sequence[SentProbe], OnSent], dict[str, str | None]]
"""Sends each probe as one message, reporting each; returns, per probe id, None or the error."""


class ProbeProviderError(PlatformError, ValueError):
    """The plan names no provider file, or one with several providers and no way to choose."""


class VendorUnreachable(SessionUnavailable):
    """The first probe found no session to send it through: the operator's settings or network,
    not the vendor's callbacks, are at fault, so there is nothing to grade (exit 2, not 1)."""


def _probe_message(provider: Provider, probe: SentProbe) -> EmailMessage:
    """The sender's campaign message for this probe, its meta exactly `probe.meta`."""
    content = Content(SUBJECT.format(id=probe.id), BODY.format(expect=probe.expect))
    meta = parse_meta(probe.meta)
    try:
        return build_message(provider, meta, content=content, sent_at=probe.sent_at)
    except MessageError:
        short = Meta(
            email=meta.email,
            account_id=meta.account_id,
            sent_at=meta.sent_at,
            variant=meta.variant,
            label=SHORT_LABEL,
            message_id=meta.message_id,
        )
        message = build_message(provider, short, content=content, sent_at=probe.sent_at)
        del message[HEADER_NAME]
        message[HEADER_NAME] = probe.meta
        return message


def send_probes(
    provider: Provider,
    probes: Sequence[SentProbe],
    on_sent: OnSent | None = None,
    *,
    open_: Callable[[Provider], SmtpSession] | None = None,
) -> dict[str, str | None]:
    """Send every probe over one reused session; one refusal never stops the others.

    If not even the first session opens (refused, timed out, TLS or AUTH failed), nothing was
    sent and `VendorUnreachable` says why; a session lost later is that probe's send error.
    """
    if open_ is None:
        context = tls_context(provider)

        def open_(p: Provider) -> SmtpSession:
            return open_session(p, context, p.secret())

    results: dict[str, str | None] = {}
    session: SmtpSession | None = None
    try:
        for probe in probes:
            error: str | None = None
            try:
                if session is None or session.client is None:
                    session = _open(open_, provider, first=not results)
                session.send(probe.to, _probe_bytes(provider, probe))
            except SendFailed as failed:
                error = failed.failure.describe()
            results[probe.id] = error
            if on_sent is not None:
                on_sent(probe, error)
    finally:
        if session is not None:
            session.quit()
    return results


def _probe_bytes(provider: Provider, probe: SentProbe) -> bytes:
    """The wire form of the probe; a `relay_fold` probe's meta header as a relay folded it."""
    message = _probe_message(provider, probe)
    if not probe.relay_fold:
        return to_bytes(message)
    del message[HEADER_NAME]
    return relay_folded(HEADER_NAME, probe.meta) + to_bytes(message)


def relay_folded(name: str, value: str) -> bytes:
    """`name: value` as a relay passes on a line over 998 characters: broken with CRLF SPACE."""
    line = f"{name}: {value}".encode()
    pieces = [line[:RELAY_LINE_LIMIT]]
    rest = line[RELAY_LINE_LIMIT:]
    while rest:
        pieces.append(b" " + rest[: RELAY_LINE_LIMIT - 1])
        rest = rest[RELAY_LINE_LIMIT - 1 :]
    return b"\r\n".join(pieces) + b"\r\n"


def _open(open_: Callable[[Provider], SmtpSession], provider: Provider, first: bool) -> SmtpSession:
    try:
        return open_(provider)
    except SendFailed as failed:
        if first:
            where = VENDOR.format(host=provider.host, port=provider.port)
            raise VendorUnreachable(where, failed.failure) from failed
        raise


def plan_provider(plan: Plan) -> Provider:
    """The one provider of the plan's provider file (ProviderError names any bad field)."""
    if plan.provider is None:
        raise ProbeProviderError(
            f"plan {plan.source}: a live run needs `provider`, the vendor's SMTP settings file"
        )
    source = str(plan.provider)
    provider = select_provider(load_providers(plan.provider), None, source)
    if (missing := provider.secret_problem()) is not None:
        raise ProbeProviderError(f"plan {plan.source}: {missing}")
    return provider


def provider_sender(plan: Plan) -> SendProbes:
    """The send function for a live run, from the plan's provider file."""
    provider = plan_provider(plan)
    return lambda probes, on_sent: send_probes(provider, probes, on_sent)
