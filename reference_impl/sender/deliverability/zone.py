"""The DNS a deliverability check is judged against: a scenario's `[authentication]` table.

The fake ESP reads the same table to give its verdicts (docs/sender.md, "Deliverability check"),
so one file describes what a receiving server sees: the IP mail comes from, the HELO name and
the TXT records of the zone. It is read here on the platform side's own terms (the ESP's reading
is the simulator's, never imported). Other tables of the file, and keys of `[authentication]`
this side does not use, are left to the ESP and ignored; every problem with the keys it does use
is reported at once, each naming its key.

    [authentication]
    client_ip = "192.0.2.10"
    helo = "mail.example.com"            # optional
    [authentication.dns]                 # name -> list of TXT records, one string each
    "sel1._domainkey.example.com" = ["v=DKIM1; k=rsa; p=MIIB..."]
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reference_impl.errors import PlatformError

__all__ = ["DEFAULT_HELO", "TABLE", "Zone", "ZoneError", "load_zone", "parse_zone"]

TABLE = "authentication"
# What the sender says in EHLO (session.SmtpSession's default), used when the zone names none.
DEFAULT_HELO = "bounceback.localhost"
NO_TABLE = f"has no [{TABLE}] table; add one with client_ip and [{TABLE}.dns]"
NOT_TABLE = "must be a table"
NOT_IP = "must be the sending IP address (IPv4 or IPv6), got {value!r}"
NOT_TEXT = "must be a string, got {value!r}"
NOT_RECORDS = "must be a list of TXT record strings, got {value!r}"
NOT_NAME = "{name!r} is not a DNS name"


class ZoneError(PlatformError, ValueError):
    """A zone file is unreadable or its `[authentication]` table is wrong; lists every problem."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        lines = "; ".join(f"{key}: {reason}" for key, reason in problems)
        super().__init__(f"zone file {source}: {lines}")
        self.source = source
        self.problems = problems


def _name(name: str) -> str:
    """DNS names compare without case and without the root's trailing dot."""
    return name.rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class Zone:
    """The sending IP, the HELO name and the TXT records a receiving server would look up."""

    client_ip: str
    helo: str = DEFAULT_HELO
    records: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def txt(self, name: str) -> tuple[str, ...]:
        """The TXT records at `name`; none when the zone does not have it (NXDOMAIN)."""
        return self.records.get(_name(name), ())

    def dkim_dnsfunc(self) -> Callable[..., bytes | None]:
        """dkimpy's `dnsfunc`: the first record at the name, as a resolver returns it, or None."""

        def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
            found = self.txt(name.decode("ascii", "replace"))
            return found[0].encode("utf-8") if found else None

        return dnsfunc


def parse_zone(data: Mapping[str, Any], source: str) -> Zone:
    """The `[authentication]` table of a parsed TOML file, checked."""
    table = data.get(TABLE)
    if table is None:
        raise ZoneError(source, [("(file)", NO_TABLE)])
    if not isinstance(table, dict):
        raise ZoneError(source, [(TABLE, NOT_TABLE)])
    problems: list[tuple[str, str]] = []
    client_ip = table.get("client_ip")
    try:
        ipaddress.ip_address(client_ip if isinstance(client_ip, str) else "")
    except ValueError:
        problems.append((f"{TABLE}.client_ip", NOT_IP.format(value=client_ip)))
    helo = table.get("helo", DEFAULT_HELO)
    if not isinstance(helo, str) or not helo:
        problems.append((f"{TABLE}.helo", NOT_TEXT.format(value=helo)))
    dns = table.get("dns", {})
    records: dict[str, tuple[str, ...]] = {}
    if not isinstance(dns, dict):
        problems.append((f"{TABLE}.dns", NOT_TABLE))
        dns = {}
    for name, values in dns.items():
        key = f"{TABLE}.dns.{name!r}"
        if not _name(name) or any(not label for label in _name(name).split(".")):
            problems.append((key, NOT_NAME.format(name=name)))
        elif not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append((key, NOT_RECORDS.format(value=values)))
        else:
            records[_name(name)] = records.get(_name(name), ()) + tuple(values)
    if problems:
        raise ZoneError(source, problems)
    return Zone(str(client_ip), str(helo), records)


def load_zone(path: str | Path) -> Zone:
    """Read a zone (or whole scenario) file; `ZoneError` names the file and what is wrong."""
    source = str(path)
    try:
        data = tomllib.loads(Path(path).read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ZoneError(source, [("(file)", f"cannot be read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ZoneError(source, [("(file)", "is not UTF-8")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ZoneError(source, [("(file)", f"is not valid TOML: {exc}")]) from exc
    return parse_zone(data, source)
