"""The scenario's small DNS zone: TXT records by name, answered without a network.

DKIM keys, SPF policies and DMARC records all live in TXT records, so one table of names to TXT
records is enough for every verdict; the fake ESP never resolves anything for real, so a run is
the same on a laptop without a network as in CI. Each string of a name's list is one whole TXT
record (the strings a resolver would hand over already joined), so a 2048-bit DKIM key is one
string, not split at 255 bytes. A name with no records answers nothing, like NXDOMAIN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Zone", "normal_name"]


def normal_name(name: str) -> str:
    """DNS names compare case-insensitively and without the root's trailing dot."""
    return name.strip().rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class Zone:
    """TXT records by normalised name; empty means every lookup finds nothing."""

    records: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, table: Mapping[str, Sequence[str]]) -> Zone:
        return cls({normal_name(name): tuple(values) for name, values in table.items()})

    def txt(self, name: str) -> tuple[str, ...]:
        return self.records.get(normal_name(name), ())

    def dkim_key(self, name: bytes, timeout: int = 5) -> bytes | None:
        """dkimpy's `dnsfunc`: the key record at `selector._domainkey.domain.`, or None.

        dkimpy reads one record; where a name has several, the one that looks like a key
        (`v=DKIM1` or a `p=` tag) is taken, as a resolver's caller picking the key would."""
        records = self.txt(name.decode("ascii", "replace"))
        keys = [r for r in records if r.lstrip().startswith(("v=DKIM1", "p=", "k="))]
        chosen = keys or list(records)
        return chosen[0].encode("utf-8") if chosen else None
