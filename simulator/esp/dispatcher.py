"""The callback dispatcher: one thread that turns spooled events into batches and POSTs them.

Delivery is at-least-once: a batch stays pending in the spool until a receiver takes it with a
2xx. What every other answer means (retry on the scenario's schedule, honour Retry-After, follow
a same-host 307/308, split on 413, dead-letter unreadable JSON) is decided by the pure
`delivery_policy` (PROTOCOL.md section 7); this thread only carries the decisions out. Batches
are capped by count and by bytes. Every response is checked against PROTOCOL.md section 4 and
each difference is logged and stored.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from simulator.esp import delivery_policy as policy
from simulator.esp.controls import Controls
from simulator.esp.outcomes import rng_for
from simulator.esp.scenario import CallbackSettings
from simulator.esp.spool import DEAD_LETTER, DELIVERED, PENDING, DueBatch, SpoolReader
from simulator.protocol.checks import check_response
from simulator.protocol.payloads import BuiltBatch, SpooledEvent, build_batch

log = logging.getLogger("simulator.esp.dispatcher")

USER_AGENT = "bounceback-fake-esp/0.1"
POLL_SECONDS = 0.25
# Commits wake the dispatcher, but under load that would mean a spool query per commit; passes
# are at least this far apart, which bounds its share of the GIL against the SMTP loop.
MIN_PASS_SECONDS = 0.05
RETRYING = "callback batch %d: %s; retry %d of %d in %.2fs"
DEAD_LETTERED = "callback batch %d (%d events) is a dead letter: %s; see GET /dead-letters"
SPLITTING = "callback batch %d: %s -> batches %d and %d"
REDIRECTED = "callback batch %d: %s"
POLICY_WARNING = "callback batch %d: %s"
PROTOCOL_DIFFERENCE = "callback batch %d: response differs from PROTOCOL.md section 4: %s"
RECEIVER_DOWN = "receiver down (simulated by the control API): no request sent"
RESET_DONE = "spool reset: %s"
RESET_WAIT_SECONDS = 30.0
RESET_BUSY = (
    "reset refused: a callback POST stayed in flight for {seconds:g}s; nothing was removed, "
    "try again (or pause delivery first)"
)
RESET_LOGGED = "spool reset: removed {removed}"


@dataclass
class _Reset:
    """A reset asked of the dispatcher thread, carried out between two of its passes."""

    done: threading.Event = field(default_factory=threading.Event)
    removed: dict[str, int] | None = None
    error: BaseException | None = None


class Dispatcher:
    """Owns the dispatcher thread; `wake()` nudges it when new events were committed."""

    def __init__(
        self,
        spool_path: str | Path,
        callback_url: str,
        settings: CallbackSettings,
        seed: int,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.spool_path = spool_path
        self.callback_url = callback_url
        self.settings = settings
        self.seed = seed
        self.poll_seconds = poll_seconds
        self._jitter_rng = random.Random(seed)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        # Events committed since the last pass counted the due ones, and how many more a batch
        # still needed then (0: nothing was pending, so any commit starts the batch delay).
        self._committed = 0
        self._room = 0
        # Runtime controls (pause, simulated outage), handed over whole by the control panel.
        self.controls: Controls | None = None
        self._reset: _Reset | None = None
        self._thread = threading.Thread(target=self._run, name="callback-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def apply_controls(self, controls: Controls) -> None:
        """A runtime change: paused stops making and sending batches after the POST in
        flight; receiver down fails every attempt without a request (retried on the schedule)."""
        self.controls = controls
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self.controls is not None and self.controls.paused

    def reset(self, timeout: float) -> dict[str, int] | None:
        """Empty the spool between two passes, so no answer lands on a batch that is gone;
        the rows removed, or None if the POST in flight outlasted `timeout` (nothing removed).

        The thread ends its pass after the POST in flight, so the wait is at most about one
        callback timeout (a paused dispatcher answers at once).
        """
        request = _Reset()
        with self._lock:
            self._reset = request
        self._wake.set()
        if not request.done.wait(timeout):
            with self._lock:
                if self._reset is request:
                    self._reset = None
                    return None
            request.done.wait()  # taken up meanwhile: it is quick from here
        if request.error is not None:
            raise request.error
        return request.removed

    def _reset_if_asked(self, reader: SpoolReader) -> None:
        with self._lock:
            request, self._reset = self._reset, None
        if request is None:
            return
        try:
            request.removed = reader.clear()
            log.warning(RESET_DONE, request.removed)
        except BaseException as exc:
            request.error = exc
        finally:
            request.done.set()

    def wake(self, events: int = 1) -> None:
        """Nudge the thread after a commit of `events` new events, if they can matter now.

        Every SMTP group commit calls this. A pass per commit would cost the SMTP loop a GIL
        hand-over each time for nothing: while events are pending the thread already sleeps only
        until the oldest one's batch delay ends, so it is woken early only when the commits may
        have filled a batch, or when nothing was pending (these events start the delay).
        """
        with self._lock:
            self._committed += events
            if self._committed < self._room:
                return
        self._wake.set()

    def _counted(self, count: int, size: int) -> None:
        """Record what a pass saw: `count` due events, batches of `size`."""
        with self._lock:
            self._room = size - count if count else 0

    def _build(self, events: list[SpooledEvent]) -> BuiltBatch:
        """The batch, shuffled (if the scenario says so) by a stream seeded by its first event."""
        first_id = events[0][0]
        reorder = rng_for(self.seed, "reorder", str(first_id)) if self.settings.reorder else None
        return build_batch(events, reorder)

    def _next_size(self, reader: SpoolReader) -> int:
        made = reader.batch_count()
        sizes = self.settings.batch_sizes
        return sizes[made % len(sizes)]

    def _make_batches(self, reader: SpoolReader, now: float) -> None:
        with self._lock:
            self._committed = 0
        while True:
            count, oldest = reader.due_events(now)
            if not count:
                self._counted(0, 0)
                return
            size = self._next_size(reader)
            if count < size and now - oldest < self.settings.delay:
                self._counted(count, size)
                return
            batch_id = reader.claim_batch(size, now, self._build, self.settings.max_batch_bytes)
            log.info("callback batch %s queued (%d event(s) were due)", batch_id, count)

    def _post(
        self, client: httpx.Client, url: str, body: bytes
    ) -> tuple[httpx.Response | None, str | None, str | None]:
        """One POST: the response, or None with the error kind and text."""
        if self.controls is not None and self.controls.receiver_down:
            return None, policy.CONNECT_ERROR, RECEIVER_DOWN
        try:
            return client.post(url, content=body), None, None
        except httpx.TimeoutException as exc:
            return None, policy.TIMEOUT, f"timeout ({type(exc).__name__})"
        except httpx.TransportError as exc:
            return None, policy.CONNECT_ERROR, f"connection failed ({type(exc).__name__}: {exc})"

    def _send(self, reader: SpoolReader, client: httpx.Client, batch: DueBatch) -> None:
        body = batch.body.encode("utf-8")
        url = self.callback_url
        hops = 0
        while True:
            response, kind, error = self._post(client, url, body)
            status = None if response is None else response.status_code
            text = None if response is None else response.text
            now = time.time()
            attempt = policy.Attempt(
                url=url,
                event_count=batch.event_count,
                attempt=batch.attempts + 1,
                now=now,
                status=status,
                headers=None if response is None else dict(response.headers),
                body=text or "",
                error=kind,
                hops=hops,
            )
            jitter = self._jitter_rng.uniform(-self.settings.jitter, self.settings.jitter)
            decision = policy.decide(attempt, self.settings.retry_schedule, jitter)
            if decision.warning:
                log.warning(POLICY_WARNING, batch.id, decision.warning)
            if decision.action != policy.REDIRECT or decision.url is None:
                break
            log.info(REDIRECTED, batch.id, decision.reason)
            url, hops = decision.url, hops + 1
        problems: list[str] = []
        if status is not None and text is not None and status >= 200:
            problems = check_response(batch.payload, batch.expected, status, text)
            for problem in problems:
                log.warning(PROTOCOL_DIFFERENCE, batch.id, problem)
        if decision.action == policy.DELIVERED:
            reader.record_attempt(batch.id, status, None, text, problems, DELIVERED, now)
            log.info("callback batch %d delivered: %d", batch.id, status)
        elif decision.action == policy.SPLIT and status is not None:
            first, second = reader.split_batch(batch.id, status, text, problems, now)
            log.warning(SPLITTING, batch.id, decision.reason, first, second)
        elif decision.action == policy.RETRY and decision.at is not None:
            reader.record_attempt(batch.id, status, error, text, problems, PENDING, decision.at)
            retries = len(self.settings.retry_schedule)
            log.warning(
                RETRYING, batch.id, decision.reason, attempt.attempt, retries, decision.at - now
            )
        else:
            reader.record_attempt(
                batch.id, status, error, text, problems, DEAD_LETTER, now, decision.reason
            )
            log.error(DEAD_LETTERED, batch.id, batch.event_count, decision.reason)

    def _sleep_seconds(self, reader: SpoolReader) -> float:
        event_due, batch_due = reader.next_due()
        candidates = [batch_due] if batch_due is not None else []
        if event_due is not None:
            # A partly filled batch waits `delay` after its oldest event before it is sent.
            candidates.append(event_due + self.settings.delay)
        if not candidates:
            return self.poll_seconds
        return min(self.poll_seconds, max(0.005, min(candidates) - time.time()))

    def _run(self) -> None:
        reader = SpoolReader(self.spool_path)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        with httpx.Client(timeout=self.settings.timeout, headers=headers) as client:
            while not self._stop.is_set():
                try:
                    self._reset_if_asked(reader)
                    now = time.time()
                    if not self.paused:
                        self._make_batches(reader, now)
                    for batch in () if self.paused else reader.due_batches(now):
                        if self._stop.is_set() or self.paused or self._reset is not None:
                            break
                        self._send(reader, client, batch)
                    pause = self.poll_seconds if self.paused else self._sleep_seconds(reader)
                except Exception:
                    log.exception("dispatcher pass failed; retrying after %.2fs", POLL_SECONDS)
                    pause = POLL_SECONDS
                self._stop.wait(min(pause, MIN_PASS_SECONDS))
                self._wake.wait(max(0.0, pause - MIN_PASS_SECONDS))
                self._wake.clear()
        reader.close()
