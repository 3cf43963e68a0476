"""What `bounceback esp` says at start about a judging scenario: the zone it checks against, what
its rules do, and how to point a provider at it. Pure.

Someone starting `bounceback esp --scenario bulk-sender-rules` for the first time cannot see the
zone, so every message they send is refused with a reason they could not have foreseen. These
lines say which domains the zone authorises, that DKIM needs their own key's record, and the
exact `provider check --deliverability --esp` command that shows the verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from simulator.esp.auth.rules import AuthSettings, Blocklist, Enforcement

__all__ = ["Listening", "start_lines"]

SPF_PREFIX = "v=spf1"
DMARC_LABEL = "_dmarc."
DKIM_LABEL = "._domainkey."
JUDGED = (
    "authentication: DKIM, SPF and DMARC judged against the scenario's zone; every connection"
    " is taken to come from {ip}"
)
PEER_IP = "the peer's own IP"
ZONE = "  zone: SPF for {spf}; DMARC for {dmarc}; DKIM keys: {dkim}"
NO_DKIM = (
    "none, so DKIM is none until you add your key's record: `bounceback provider dkim-keygen"
    " --selector S --domain D --out key.pem` prints it; {where}"
)
COPY_SHIPPED = (
    "`bounceback scenarios show {name} > mine.toml`, add it under [authentication.dns],"
    " run with --scenario mine.toml"
)
EDIT_FILE = "add it under [authentication.dns] in {name}"
RULES = "  enforcement: {actions}; blocklist: {listed}"
NOTHING = "(none)"
PROVIDER = (
    'point a provider at it: host = "{host}", port = {port}, scheme = "{scheme}"{ca},'
    " from_address at {domain}"
)
CHECK = (
    "see its verdicts: bounceback provider check PROVIDER.toml --deliverability"
    " --esp {host}:{port} --esp-api {api}"
)
NO_API = (
    "see its verdicts: restart with --api-port PORT, then bounceback provider check"
    " PROVIDER.toml --deliverability --esp {host}:{port} --esp-api http://{host}:PORT"
)
# The provider scheme that talks to each `--tls` mode of the ESP.
SCHEMES = {"none": "smtp", "smtp": "smtp", "starttls": "starttls", "smtps": "smtps"}


@dataclass(frozen=True, slots=True)
class Listening:
    """Where the started ESP listens, as the start lines tell a provider to reach it."""

    host: str
    port: int
    tls: str
    api_url: str | None = None
    ca_path: str | None = None


def _names(settings: AuthSettings) -> tuple[list[str], list[str], list[str]]:
    spf, dmarc, dkim = [], [], []
    for name, records in settings.zone.records.items():
        if name.startswith(DMARC_LABEL):
            dmarc.append(name.removeprefix(DMARC_LABEL))
        elif DKIM_LABEL in name:
            dkim.append(name)
        elif any(record.strip().lower().startswith(SPF_PREFIX) for record in records):
            spf.append(name)
    return sorted(spf), sorted(dmarc), sorted(dkim)


def start_lines(
    settings: AuthSettings,
    enforcement: Enforcement,
    blocklist: Blocklist,
    *,
    scenario: str,
    shipped: bool,
    where: Listening,
) -> list[str]:
    """The lines printed after `SMTP listening on ...` for a scenario with `[authentication]`;
    `scenario` is the name or file given to `--scenario`, `shipped` whether it names a shipped
    file (then the hint is to copy it, since the shipped one cannot be edited)."""
    spf, dmarc, dkim = _names(settings)
    hint = COPY_SHIPPED.format(name=scenario) if shipped else EDIT_FILE.format(name=scenario)
    actions = ", ".join(f"{f.name}={getattr(enforcement, f.name)}" for f in fields(enforcement))
    listed = [
        str(network.network_address if network.num_addresses == 1 else network)
        for network in blocklist.ips
    ] + list(blocklist.domains)
    ca = f', ca_file = "{where.ca_path}"' if where.ca_path else ""
    lines = [
        JUDGED.format(ip=settings.client_ip or PEER_IP),
        ZONE.format(
            spf=", ".join(spf) or NOTHING,
            dmarc=", ".join(dmarc) or NOTHING,
            dkim=", ".join(dkim) or NO_DKIM.format(where=hint),
        ),
        RULES.format(actions=actions, listed=", ".join(listed) or NOTHING),
        PROVIDER.format(
            host=where.host,
            port=where.port,
            scheme=SCHEMES[where.tls],
            ca=ca,
            domain=" or ".join(spf or dmarc) or "a domain of the zone",
        ),
    ]
    if where.api_url is not None:
        lines.append(CHECK.format(host=where.host, port=where.port, api=where.api_url))
    else:
        lines.append(NO_API.format(host=where.host, port=where.port))
    return lines
