"""Where each certification check comes from, and how hard it may therefore judge a vendor. Pure.

A check is only as trustworthy as its source (issue 11, docs/PROTOCOL.md section 4):

- `page`: a sentence of the vendor's page (generic-smtp-callbacks.txt), quoted verbatim; such a
  check, like a protocol invariant (the 1000-event limit), may be a MUST;
- `reading`: an inference written in docs/PROTOCOL.md, quoted; at most a SHOULD, since another
  reader of the page may differ;
- `decision`: a choice bounceback made where both are silent, named with the doc that says so;
  informational: reported, never failed.

`check_level` enforces this when a check is defined, so no check can claim more than its source.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DECISION",
    "KINDS",
    "PAGE",
    "PAGE_SOURCE",
    "PROTOCOL_SOURCE",
    "READING",
    "Provenance",
    "check_level",
    "decision",
    "page",
    "reading",
]

PAGE = "page"
READING = "reading"
DECISION = "decision"
KINDS = (PAGE, READING, DECISION)
PAGE_SOURCE = "the vendor's page (generic-smtp-callbacks.txt)"
PROTOCOL_SOURCE = "docs/PROTOCOL.md"
# The strongest level each kind may carry; levels are ranked MUST > SHOULD > INFORMATIONAL.
_RANK = {"MUST": 2, "SHOULD": 1, "INFORMATIONAL": 0}
_STRONGEST = {PAGE: "MUST", READING: "SHOULD", DECISION: "INFORMATIONAL"}


@dataclass(frozen=True, slots=True)
class Provenance:
    """The kind of source, the words quoted from it (verbatim), and where they are."""

    kind: str
    quote: str
    source: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"provenance kind {self.kind!r}: use one of {', '.join(KINDS)}")
        if not self.quote.strip():
            raise ValueError("a provenance quotes its source; the quote is empty")

    def __str__(self) -> str:
        return f'{self.kind}: "{self.quote}" ({self.source})'


def page(quote: str) -> Provenance:
    """A sentence of the vendor's page, verbatim (tested against the page where it is at hand)."""
    return Provenance(PAGE, quote, PAGE_SOURCE)


def reading(quote: str, section: int) -> Provenance:
    """An inference of docs/PROTOCOL.md, quoted from the section that writes it down."""
    return Provenance(READING, quote, f"{PROTOCOL_SOURCE} section {section}")


def decision(quote: str, doc: str) -> Provenance:
    """A choice of bounceback's, quoted from the doc that states it."""
    return Provenance(DECISION, quote, doc)


def check_level(check_id: str, level: str, provenance: Provenance) -> None:
    """Refuse a check whose level is stronger than its source allows."""
    strongest = _STRONGEST[provenance.kind]
    if _RANK[level] > _RANK[strongest]:
        raise ValueError(
            f"check {check_id}: a {provenance.kind} check is at most {strongest}, not {level}"
        )
