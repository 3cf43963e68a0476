"""The report charts' geometry, pure: the outcome bars and the timeline of arrivals.

The pages draw them as SVG from these numbers (no charting library, nothing to vendor, and SVG
attributes are not inline styles, so the pages keep a strict Content-Security-Policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reference_impl.protocol import effects
from reference_impl.protocol import payload as p

OUTCOMES = (p.DELIVERED, p.HARD_BOUNCE, p.SOFT_BOUNCE, p.SPAM, p.UNSUBSCRIBED)
"""The bars every report shows, in this order; other counters show only when not zero."""
OUTCOME_LABELS = {
    p.DELIVERED: "delivered",
    p.HARD_BOUNCE: "hard bounce",
    p.SOFT_BOUNCE: "soft bounce",
    p.SPAM: "spam",
    p.UNSUBSCRIBED: "unsubscribed",
    p.BOUNCE: "bounce",
    effects.SEND_FAILED: "send failed",
}


@dataclass(frozen=True, slots=True)
class Bar:
    kind: str
    label: str
    count: int
    fraction: float
    """The bar's length as a fraction of the longest one (0 when every count is 0)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One type's part of a column: from `bottom` up by `height`, fractions of the busiest."""

    kind: str
    count: int
    bottom: float
    height: float


@dataclass(frozen=True, slots=True)
class Column:
    at: str
    """When the column starts, UTC, as the page shows it."""
    total: int
    fraction: float
    segments: list[Segment]


def outcome_bars(counts: dict[str, int]) -> list[Bar]:
    """A report's counts as bars: the five outcomes always, any other counter when not zero."""
    kinds = [*OUTCOMES, *(k for k in counts if k not in OUTCOMES and counts[k])]
    values = [counts.get(k, 0) for k in kinds]
    longest = max(values, default=0)
    return [
        Bar(k, OUTCOME_LABELS.get(k, k), n, n / longest if longest else 0.0)
        for k, n in zip(kinds, values, strict=True)
    ]


def timeline_columns(timeline: dict[str, Any]) -> list[Column]:
    """A report's timeline (`Store.timeline`) as columns scaled to the busiest one."""
    buckets = timeline["buckets"]
    totals = [sum(b["counts"].values()) for b in buckets]
    busiest = max(totals, default=0)
    return [
        Column(
            shown_time(b["at"]),
            total,
            total / busiest if busiest else 0.0,
            _stacked(b["counts"], busiest),
        )
        for b, total in zip(buckets, totals, strict=True)
    ]


def _stacked(counts: dict[str, int], busiest: int) -> list[Segment]:
    """A column's types stacked in the bars' order, the outcomes first."""
    kinds = [*(k for k in OUTCOMES if k in counts), *sorted(k for k in counts if k not in OUTCOMES)]
    segments = []
    bottom = 0.0
    for kind in kinds:
        height = counts[kind] / busiest
        segments.append(Segment(kind, counts[kind], bottom, height))
        bottom += height
    return segments


def shown_time(epoch: float | None) -> str:
    """A stored time as the pages show it: UTC, to the second."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
