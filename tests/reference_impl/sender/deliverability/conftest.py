"""A signing provider, its published record and a zone where everything passes, for the
deliverability checks; each test changes one thing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reference_impl.sender.dkim import generate_key
from reference_impl.sender.provider import Provider, parse_providers

SELECTOR = "bb2026"
DOMAIN = "acme.example"
CLIENT_IP = "192.0.2.10"
SPF_RECORD = f"v=spf1 ip4:{CLIENT_IP} -all"
DMARC_RECORD = "v=DMARC1; p=reject"


@dataclass(frozen=True)
class Keys:
    """Two keys made by `dkim-keygen`'s helper: the provider signs with `path`; `other` is the
    line of a different key, for a zone that publishes the wrong one."""

    path: Path
    line: str
    other: str

    @property
    def value(self) -> str:
        return record_value(self.line)


def record_value(zone_line: str) -> str:
    """The TXT value a resolver returns for a zone-file line: its quoted strings joined."""
    return "".join(zone_line.split(" IN TXT ", 1)[1].split('"')[1::2])


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("dkim")
    line = generate_key(SELECTOR, DOMAIN, folder / "signing.pem")
    other = generate_key(SELECTOR, DOMAIN, folder / "other.pem")
    return Keys(folder / "signing.pem", line, other)


def provider_table(keys: Keys, **changes: Any) -> dict[str, Any]:
    table = {
        "nickname": "acme",
        "host": "127.0.0.1",
        "port": 25,
        "from_address": f"news@{DOMAIN}",
        "preference_center": "custom",
        "preference_center_url": "https://acme.example/unsubscribe?e={email}&sig={sig}",
        "dkim_selector": SELECTOR,
        "dkim_domain": DOMAIN,
        "dkim_key_file": str(keys.path),
    }
    table.update(changes)
    return {name: value for name, value in table.items() if value is not None}


def make_provider(keys: Keys, **changes: Any) -> Provider:
    (provider,) = parse_providers(provider_table(keys, **changes), "test")
    return provider


def zone_table(keys: Keys, records: dict[str, list[str] | None] | None = None) -> dict[str, Any]:
    """The `[authentication]` document where every check passes; `records` replace or (None)
    remove names."""
    dns: dict[str, list[str]] = {
        f"{SELECTOR}._domainkey.{DOMAIN}": [keys.value],
        DOMAIN: [SPF_RECORD],
        f"_dmarc.{DOMAIN}": [DMARC_RECORD],
    }
    for name, value in (records or {}).items():
        if value is None:
            dns.pop(name, None)
        else:
            dns[name] = value
    return {"authentication": {"client_ip": CLIENT_IP, "helo": "mail.acme.example", "dns": dns}}
