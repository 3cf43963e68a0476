"""The running ESP's control panel: the current `Controls`, who changed them, and when.

Changes arrive on the API's threads; the handler (SMTP loop) and the dispatcher (its thread)
are handed each new `Controls` whole, so they never see half of a change. Every change is
logged and kept (the last `KEPT_CHANGES`) for the dashboard's list.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from simulator.esp.controls import Controls, apply_change

log = logging.getLogger("simulator.esp.controls")

KEPT_CHANGES = 200
CHANGE_LOGGED = "control change by %s: %s"
RESTORED = "restored the scenario's controls"


class ControlPanel:
    """`change(document, source)` applies a runtime change and tells every listener."""

    def __init__(self, initial: Controls, listeners: tuple[Callable[[Controls], None], ...]):
        self._initial = initial
        self._current = initial
        self._listeners = listeners
        self._lock = threading.Lock()
        self._changes: deque[dict[str, Any]] = deque(maxlen=KEPT_CHANGES)
        self.version = 0
        """Counts changes: the dashboard's stream sends a new state when it moves."""
        for listener in listeners:
            listener(initial)

    @property
    def current(self) -> Controls:
        return self._current

    def change(self, document: Any, source: str) -> tuple[Controls, list[str]]:
        """Apply `document`; raises `ControlError` (and changes nothing) when it is wrong."""
        with self._lock:
            new, lines = apply_change(self._current, document)
            self._install(new, lines, source)
        return new, lines

    def restore(self, source: str) -> Controls:
        """Back to what the scenario said at start."""
        with self._lock:
            new, lines = apply_change(self._current, self._initial.document())
            self._install(new, [RESTORED, *lines], source)
        return new

    def record(self, lines: list[str], source: str) -> None:
        """Log something done to the ESP that is not a control (a reset), with the changes."""
        with self._lock:
            self._install(self._current, lines, source)

    def _install(self, new: Controls, lines: list[str], source: str) -> None:
        self._current = new
        for listener in self._listeners:
            listener(new)
        if lines:
            self.version += 1
            self._changes.appendleft({"at": time.time(), "source": source, "changes": lines})
            log.warning(CHANGE_LOGGED, source, "; ".join(lines))

    def changes(self) -> list[dict[str, Any]]:
        """The kept changes, newest first."""
        with self._lock:
            return list(self._changes)
