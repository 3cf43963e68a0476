"""The probe: one message built exactly as the provider's campaign builds it, and signed as its
session signs it, so the checks judge the bytes a mailbox provider would receive. Pure."""

from __future__ import annotations

import time
from dataclasses import dataclass

from reference_impl.protocol.meta import Meta
from reference_impl.sender.campaign import first_message_id
from reference_impl.sender.dkim import public_der, sign_message
from reference_impl.sender.message import Template
from reference_impl.sender.provider import Provider

__all__ = ["PROBE_LABEL", "PROBE_TO", "Probe", "build_probe"]

# The probe's campaign label (meta field 6), so its callbacks, if any, are told from a campaign's.
PROBE_LABEL = "deliverability_probe"
# Where the probe is addressed unless told: a reserved domain (RFC 2606), never delivered.
PROBE_TO = "deliverability-probe@example.com"


@dataclass(frozen=True, slots=True)
class Probe:
    """The signed bytes (and the campaign's bytes before signing, which a session signs itself),
    the meta they carry, the envelope sender and the DKIM public key."""

    data: bytes
    unsigned: bytes
    to: str
    meta_text: str
    mail_from: str
    public_key: bytes | None


def build_probe(
    provider: Provider,
    *,
    to: str = PROBE_TO,
    receiver_url: str | None = None,
    sent_at: float | None = None,
) -> Probe:
    """The campaign's message to `to` (`message.Template`, as `Campaign` renders it), signed by
    `dkim.sign_message` when the provider names a key, as `SmtpSession.send` signs it."""
    when = int(time.time() if sent_at is None else sent_at)
    meta = Meta(to, provider.account_id, when, 0, PROBE_LABEL, first_message_id(None))
    template = Template(
        provider,
        account_id=provider.account_id,
        label=PROBE_LABEL,
        variant=0,
        receiver_url=receiver_url,
    )
    unsigned = template.render(meta)
    pem = provider.dkim_key() if provider.dkim_selector is not None else None
    public_key = public_der(pem) if pem is not None else None
    data = sign_message(provider, unsigned)
    return Probe(data, unsigned, to, meta.encode(), provider.from_address, public_key)
