"""The ledger: what a target acknowledged, one JSON line per acknowledged request.

Each Locust process appends to its own file in the ledger folder (`<host>-<pid>.jsonl`), so
workers on several machines never share a file; `bounceback load verify` reads every file it is
given. What counts as acknowledged is what the receiver said it processed: a 200 whose
UNPROCESSED_EVENTS did not list the event. Matching is positional, as the protocol orders the
unprocessed entries as the events were sent.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.errors import SimulatorError
from simulator.protocol import expect as x
from simulator.protocol.difference import difference


class LedgerError(SimulatorError, ValueError):
    """A ledger file is unreadable; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """One event a target said it processed: its meta and type, and which load request sent it."""

    meta: str
    type: str
    kind: str


def _same_event(sent: Any, echoed: Any) -> bool:
    """Whether `echoed` is `sent` plus an errorDescription, compared as JSON as the model does."""
    if not isinstance(sent, dict) or not isinstance(echoed, dict):
        return sent == echoed
    rest = {k: v for k, v in echoed.items() if k != x.ERROR_DESCRIPTION_KEY}
    return not difference(sent, rest)


def acknowledged_events(events: list[Any], reply: Any) -> list[tuple[str, str]]:
    """(meta, type) of each sent event the 200 reply did not list as unprocessed."""
    unprocessed = reply.get(x.UNPROCESSED_KEY, []) if isinstance(reply, dict) else []
    pending = iter(unprocessed)
    waiting = next(pending, None)
    processed = []
    for event in events:
        if waiting is not None and _same_event(event, waiting):
            waiting = next(pending, None)
            continue
        if isinstance(event, dict) and isinstance(event.get("meta"), str):
            processed.append((event["meta"], str(event.get("type"))))
    return processed


class Ledger:
    """Appends acknowledgements for one process; thread-safe, flushed per line."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{socket.gethostname()}-{os.getpid()}.jsonl"
        self._lock = threading.Lock()
        self._file = self.path.open("a", encoding="utf-8")

    def record(self, kind: str, acknowledged: Iterable[tuple[str, str]]) -> None:
        line = json.dumps({"kind": kind, "events": list(acknowledged)})
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_ledgers(paths: Iterable[Path]) -> Iterator[Acknowledged]:
    """Every acknowledgement in the given files, or in every `*.jsonl` of the given folders."""
    for path in paths:
        files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
        for file in files:
            with file.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                        for meta, kind in record["events"]:
                            yield Acknowledged(meta, kind, record["kind"])
                    except (ValueError, KeyError, TypeError) as exc:
                        raise LedgerError(f"{file}:{number}: not a ledger line ({exc})") from exc
