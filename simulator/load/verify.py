"""`bounceback load verify`: nothing a receiver acknowledged may be missing from what it holds.

The comparison is pure (`difference`), in the manner of pytest-httpserver's: what the load
acknowledged against the system events the receiver's read API returns. Every acknowledged event
must have raised a system event of its type for its meta (so it was stored and projected, not only
answered), and no system event may be raised twice for one meta and type, however often the event
was retried. The fetch is a thin loop over the paged read API.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulator.errors import SimulatorError
from simulator.load.ledger import Acknowledged

PAGE = 1000
# The type a ledger gives a message an ESP accepted over SMTP (it has no callback type yet).
ACCEPTED = "accepted"
MISSING_SHOWN = 10


class ReadAPIError(SimulatorError, RuntimeError):
    """The receiver's read API could not be read; the message names the URL and the answer."""


@dataclass
class Verdict:
    acknowledged: int
    distinct: int
    held: int
    missing: list[tuple[str, str]] = field(default_factory=list)
    raised_twice: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.raised_twice

    def lines(self) -> list[str]:
        out = [
            f"acknowledged: {self.acknowledged} events ({self.distinct} distinct meta and type),"
            f" receiver holds {self.held} system events",
            f"missing: {len(self.missing)}; raised more than once: {len(self.raised_twice)}",
        ]
        out += [f"  missing {meta!r} ({kind})" for meta, kind in self.missing[:MISSING_SHOWN]]
        out += [
            f"  {name} raised twice for {meta!r} ({kind})"
            for meta, kind, name in self.raised_twice[:MISSING_SHOWN]
        ]
        return out


def difference(
    acknowledged: Iterable[Acknowledged],
    system_events: Iterable[dict[str, Any]],
    logged_metas: Iterable[str] = (),
) -> Verdict:
    """Compare acknowledgements with what the receiver holds.

    A callback event the receiver acknowledged must have raised a system event of its type for
    its meta (`system_events` carry `meta`, `type`, `name`); a message an ESP accepted over SMTP
    (type `accepted`) must have come back in some callback the receiver logged (`logged_metas`).
    """
    acks = list(acknowledged)
    wanted = {(a.meta, a.type) for a in acks}
    raised: Counter[tuple[str, str, str]] = Counter()
    held = 0
    for event in system_events:
        held += 1
        raised[(str(event.get("meta")), str(event.get("type")), str(event.get("name")))] += 1
    present = {(meta, kind) for meta, kind, _ in raised}
    present |= {(meta, ACCEPTED) for meta in logged_metas}
    return Verdict(
        acknowledged=len(acks),
        distinct=len(wanted),
        held=held,
        missing=sorted(wanted - present),
        raised_twice=sorted(key for key, count in raised.items() if count > 1),
    )


def _pages(
    base_url: str, path: str, key: str, token: str | None, query: dict[str, str] | None = None
) -> Iterable[dict[str, Any]]:
    """Every item of a paged list, following `next` (the cursor for `after`) until it is null;
    `query` is sent with every page."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params: dict[str, Any] = {**(query or {}), "limit": PAGE}
    with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=60) as client:
        while True:
            try:
                reply = client.get(path, params=params)
            except httpx.HTTPError as exc:
                raise ReadAPIError(f"{base_url}{path}: {exc}") from exc
            if reply.status_code != 200:
                raise ReadAPIError(
                    f"{base_url}{path} answered {reply.status_code}: {reply.text[:200]}"
                )
            document = reply.json()
            items = document.get(key, []) if isinstance(document, dict) else document
            yield from items
            cursor = document.get("next") if isinstance(document, dict) else None
            if cursor is None and path == "/api/callbacks" and len(items) == PAGE:
                cursor = items[-1]["id"]  # a log read by id, before the API returned `next`
            if cursor is None or not items:
                return
            params = {**(query or {}), "limit": PAGE, "after": cursor}


def system_events(base_url: str, token: str | None = None) -> Iterable[dict[str, Any]]:
    return _pages(base_url, "/api/events", "events", token)


def logged_metas(base_url: str, token: str | None = None) -> Iterable[str]:
    """The meta of every event in every callback the receiver logged, however it answered."""
    # The list gives each callback's summary unless asked for bodies (a receiver from before
    # that switch ignores it and sends them anyway).
    for callback in _pages(base_url, "/api/callbacks", "callbacks", token, {"body": "true"}):
        try:
            document = json.loads(callback.get("body", ""))
            for group in document["events"].values():
                for event in group:
                    if isinstance(event, dict) and isinstance(event.get("meta"), str):
                        yield event["meta"]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
