"""`bounceback esp`'s start lines for a judging scenario: the zone's domains, DKIM's missing key
and where to add it, the rules, and how a provider reaches the ESP and reads its verdicts."""

from __future__ import annotations

import ipaddress

from simulator.esp.auth import AuthSettings, Blocklist, Enforcement, Zone
from simulator.esp.auth.summary import Listening, start_lines

ZONE = Zone.of(
    {
        "platform.example": ["v=spf1 ip4:192.0.2.10 -all"],
        "_dmarc.platform.example": ["v=DMARC1; p=reject"],
    }
)


def test_a_zone_without_a_dkim_key_says_how_to_add_one_to_a_copy_of_the_shipped_file() -> None:
    lines = start_lines(
        AuthSettings(ZONE, client_ip="192.0.2.10"),
        Enforcement(unauthenticated="refuse"),
        Blocklist(ips=(ipaddress.ip_network("203.0.113.7"),), domains=("spammy.example",)),
        scenario="bulk-sender-rules",
        shipped=True,
        where=Listening("127.0.0.1", 2525, "none", "http://127.0.0.1:8026"),
    )
    assert lines[0].endswith("every connection is taken to come from 192.0.2.10")
    assert lines[1].startswith("  zone: SPF for platform.example; DMARC for platform.example;")
    assert "dkim-keygen" in lines[1]
    assert "`bounceback scenarios show bulk-sender-rules > mine.toml`" in lines[1]
    assert "unauthenticated=refuse, unaligned=off" in lines[2]
    assert lines[2].endswith("blocklist: 203.0.113.7, spammy.example")
    assert lines[3] == (
        'point a provider at it: host = "127.0.0.1", port = 2525, scheme = "smtp",'
        " from_address at platform.example"
    )
    assert lines[4].endswith("--esp 127.0.0.1:2525 --esp-api http://127.0.0.1:8026")


def test_an_edited_file_its_key_tls_and_no_api() -> None:
    zone = Zone.of({**ZONE.records, "s1._domainkey.platform.example": ["v=DKIM1; p=AAAA"]})
    lines = start_lines(
        AuthSettings(zone),
        Enforcement(),
        Blocklist(),
        scenario="mine.toml",
        shipped=False,
        where=Listening("127.0.0.1", 2525, "starttls", None, "/tmp/ca.pem"),
    )
    assert lines[0].endswith("come from the peer's own IP")
    assert lines[1].endswith("DKIM keys: s1._domainkey.platform.example")
    assert lines[2].endswith("blocklist: (none)")
    assert 'scheme = "starttls", ca_file = "/tmp/ca.pem"' in lines[3]
    assert lines[4].startswith("see its verdicts: restart with --api-port PORT")
