"""The background half of the projection (`projection.py`): a daemon thread that turns the
callback log into event rows once callbacks stop arriving.

Projecting while an ESP's burst is still coming would take the CPU from the requests being
acknowledged, so the thread waits until no callback has arrived for `quiet` seconds. A backlog of
`max_backlog` callbacks is projected regardless, which bounds how much a read may have to catch
up on first. Like aiosmtpd's controller, this class owns the thread and nothing else: what a step
does is the projection's business.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

QUIET_SECONDS = 0.05
MAX_BACKLOG = 64
RETRY_SECONDS = 1.0

log = logging.getLogger("bounceback.projector")


class Projector:
    """Calls `step` (project a few callbacks, return how many) when the log has been quiet."""

    def __init__(
        self,
        step: Callable[[], int],
        quiet: float = QUIET_SECONDS,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self._step = step
        self._quiet = quiet
        self._max_backlog = max_backlog
        self._condition = threading.Condition()
        self._last_recorded = 0.0
        self._backlog = 0
        self._arrived = 0
        self._stopped = False
        self._thread: threading.Thread | None = None

    def recorded(self) -> None:
        """A callback was committed: start the thread if needed and restart the quiet clock."""
        with self._condition:
            self._last_recorded = time.monotonic()
            self._backlog += 1
            self._arrived += 1
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(
                    target=self._run, name="bounceback-projector", daemon=True
                )
                self._thread.start()
            # A thread with a backlog sleeps only until the quiet period would end, then looks
            # again; waking it for every callback of a burst would cost a GIL hand-over each.
            if self._backlog == 1 or self._backlog >= self._max_backlog:
                self._condition.notify()

    def stop(self) -> None:
        """Let the step in progress finish, then end the thread; pending work stays in the log."""
        with self._condition:
            self._stopped = True
            self._condition.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _wait_seconds(self) -> float | None:
        """How long until a step is due: None when there is nothing to do, 0 when due now."""
        if not self._backlog:
            return None
        if self._backlog >= self._max_backlog:
            return 0.0
        return max(0.0, self._quiet - (time.monotonic() - self._last_recorded))

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped and (wait := self._wait_seconds()) != 0.0:
                    self._condition.wait(wait)
                if self._stopped:
                    return
                self._arrived = 0
            try:
                projected = self._step()
            except Exception:
                log.exception("projection failed; retrying in %.0f s", RETRY_SECONDS)
                time.sleep(RETRY_SECONDS)
                continue
            with self._condition:
                # A step that found nothing (a read had caught up) may have started before a
                # callback was logged: only those recorded during the step are still pending.
                self._backlog = max(0, self._backlog - projected) if projected else self._arrived
