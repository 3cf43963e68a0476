"""The live certification run: recorder up, probes out through the vendor's SMTP, wait, hand back.

Sockets and threads stay thin here: the recorder is `recording.create_recorder_app` under waitress,
arrivals are counted by `ArrivalTracker` (plain logic, tested without sockets), and grading happens
afterwards from the recording file as written to disk, exactly as `--from-recording` would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from reference_impl.certify.checks import normalise_meta
from reference_impl.certify.plan import DELIVERED, Plan
from reference_impl.certify.probes import ProbeMetaError, message_id_base, sent_probe
from reference_impl.certify.recording import (
    Callback,
    RecorderConfig,
    Recording,
    RecordingWriter,
    RunInfo,
    SentProbe,
    create_recorder_app,
    event_metas,
    probe_record,
    read_recording,
    run_record,
)
from reference_impl.certify.smtp import SendProbes, provider_sender
from reference_impl.errors import PlatformError
from reference_impl.receiver.server import BackgroundServer, ServerError

__all__ = [
    "ArrivalTracker",
    "Hold",
    "LiveRunError",
    "WaitState",
    "build_probes",
    "live_run",
]


RECORDER_THREADS = 8
POLL_SECONDS = 0.2
RECORDER_BODY_LIMIT = 64 * 1024 * 1024
RELEASE_SECONDS = 5.0
RELEASE_GRACE_SECONDS = 0.2


class LiveRunError(PlatformError):
    """The live run cannot start or send: the message says which part and what to change."""


@dataclass(frozen=True, slots=True)
class WaitState:
    """What the live display shows."""

    expected: int
    arrived: int
    retries_expected: int
    retries_seen: int

    @property
    def missing(self) -> int:
        return self.expected - self.arrived

    @property
    def complete(self) -> bool:
        return self.arrived == self.expected and self.retries_seen == self.retries_expected


class Hold:
    """The recorder's slow answer: a wait that shutdown can cut short and then wait out.

    Stopping waitress while a held request is still inside the app breaks its shutdown (the task
    writes through a trigger already closed), so `release` wakes every hold and waits until the
    handlers have returned, plus a moment for waitress to hand their answers over.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._active = 0

    def __call__(self, seconds: float) -> None:
        with self._idle:
            self._active += 1
        try:
            self._stop.wait(seconds)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def release(self, timeout: float = RELEASE_SECONDS) -> None:
        self._stop.set()
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout)
        time.sleep(RELEASE_GRACE_SECONDS)


class ArrivalTracker:
    """Counts which probes' events have arrived, and whether the probed callbacks were retried.

    A retry is a call carrying the probe's event after the call that got the probe's answer (500
    or slow); a call before it (another probe's answer given to a shared batch) does not count.

    Attribution is the grader's (exact meta, else the same meta once folding is undone), so the
    display and the report agree on what arrived.
    """

    def __init__(self, probes: Sequence[SentProbe]) -> None:
        self._exact = {p.meta: p for p in probes}
        self._loose = {normalise_meta(p.meta): p for p in probes}
        self._expected = {p.id for p in probes if p.expect != DELIVERED and p.send_error is None}
        self._retry = {
            p.id: p.respond for p in probes if p.respond is not None and p.send_error is None
        }
        self._calls: dict[str, int] = {}
        self._probed: set[str] = set()
        self._retried: set[str] = set()
        self._lock = threading.Lock()

    def observe(self, callback: Callback) -> None:
        ids: set[str] = set()
        for meta in event_metas(callback.body):
            probe = self._exact.get(meta) or self._loose.get(normalise_meta(meta))
            if probe is not None:
                ids.add(probe.id)
        with self._lock:
            for probe_id in ids:
                self._calls[probe_id] = self._calls.get(probe_id, 0) + 1
                if probe_id in self._probed:
                    self._retried.add(probe_id)
                elif (
                    callback.injected is not None and self._retry.get(probe_id) == callback.injected
                ):
                    self._probed.add(probe_id)

    def exclude(self, probe_ids: Iterable[str]) -> None:
        """Stop expecting probes the vendor's SMTP refused: no callback can come for them."""
        with self._lock:
            for probe_id in probe_ids:
                self._expected.discard(probe_id)
                self._retry.pop(probe_id, None)

    def snapshot(self) -> WaitState:
        with self._lock:
            return WaitState(
                expected=len(self._expected),
                arrived=sum(1 for p in self._expected if self._calls.get(p)),
                retries_expected=len(self._retry),
                retries_seen=len(self._retried),
            )


def build_probes(plan: Plan, started_at: float) -> list[SentProbe]:
    """Every probe with its own meta; raises `LiveRunError` if a meta length cannot be met."""
    base = message_id_base(started_at)
    try:
        return [
            sent_probe(plan, spec, message_id=base - index - 1, sent_at=started_at)
            for index, spec in enumerate(plan.probes)
        ]
    except ProbeMetaError as exc:
        raise LiveRunError(f"plan {plan.source}: {exc}") from exc


def _send(send: SendProbes, probes: Sequence[SentProbe], console: Console) -> dict[str, str | None]:
    """Send with a progress bar: sent, refused, remaining."""
    refused = 0
    columns = (TextColumn("[bold]sending"), BarColumn(), TextColumn("{task.fields[detail]}"))
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("send", total=len(probes), detail="")

        def on_sent(probe: SentProbe, error: str | None) -> None:
            nonlocal refused
            refused += error is not None
            progress.advance(task)
            done = int(progress.tasks[0].completed)
            progress.update(
                task,
                detail=f"sent {done - refused}, refused {refused}, remaining {len(probes) - done}",
            )

        return send(probes, on_sent)


def _wait(
    plan: Plan,
    tracker: ArrivalTracker,
    deadline_at: float,
    console: Console,
    clock: Callable[[], float],
) -> None:
    """Show expected/arrived/missing/time left until all came (plus settle) or the deadline."""
    columns = (
        TextColumn("[bold]callbacks"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    settle_until: float | None = None
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("wait", total=max(tracker.snapshot().expected, 1), detail="")
        while True:
            now = clock()
            state = tracker.snapshot()
            left = max(deadline_at - now, 0.0)
            progress.update(
                task,
                completed=state.arrived,
                detail=(
                    f"expected {state.expected}, arrived {state.arrived}, missing {state.missing}, "
                    f"retries {state.retries_seen}/{state.retries_expected}, {left:.0f} s left"
                ),
            )
            if state.complete and settle_until is None:
                settle_until = now + plan.settle_seconds
            if now >= deadline_at or (settle_until is not None and now >= settle_until):
                return
            time.sleep(POLL_SECONDS)


def live_run(
    plan: Plan,
    host: str,
    port: int,
    recording_path: Path,
    console: Console,
    *,
    send: SendProbes | None = None,
    clock: Callable[[], float] = time.time,
) -> Recording:
    """Run the certification live and return the recording as read back from disk."""
    if send is None:
        send = provider_sender(plan)
    started_at = clock()
    deadline_at = started_at + plan.deadline_seconds
    probes = build_probes(plan, started_at)
    recording_path.parent.mkdir(parents=True, exist_ok=True)
    hold = Hold()
    with recording_path.open("w", encoding="utf-8") as handle:
        writer = RecordingWriter(handle)
        writer.write(run_record(RunInfo(plan.name, started_at, deadline_at)))
        tracker = ArrivalTracker(probes)
        config = RecorderConfig(
            writer,
            injections={p.meta: p.respond for p in probes if p.respond},
            slow_seconds=plan.slow_response_seconds,
            clock=clock,
            sleep=hold,
            on_callback=tracker.observe,
        )
        try:
            server = BackgroundServer(
                create_recorder_app(config), host, port, RECORDER_THREADS, RECORDER_BODY_LIMIT
            )
        except ServerError as exc:
            raise LiveRunError(f"the recording receiver {exc}; choose another --listen") from exc
        server.start()
        console.print(f"Recording receiver listening on {server.url} (any path is recorded)")
        console.print(f"The vendor must post callbacks to {plan.callback_url}")
        try:
            errors = _send(send, probes, console)
            sent = [replace(p, send_error=errors.get(p.id)) for p in probes]
            for probe in sent:
                writer.write(probe_record(probe))
            refused = [p for p in sent if p.send_error]
            console.print(f"Sent {len(sent) - len(refused)}, refused {len(refused)}")
            tracker.exclude(p.id for p in refused)
            _wait(plan, tracker, deadline_at, console, clock)
        finally:
            hold.release()
            server.stop()
    return read_recording(recording_path)
