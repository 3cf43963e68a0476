"""Sending a campaign: one message per recipient, each failure classified, the campaign goes on.

Workers (`connections` of them, each with its own `session.SmtpSession`, reused from message to
message) pull recipients from a queue; a failure is recorded against its recipient and the others
are still sent. Sent messages go into the receiver's store in batched transactions (every
`BATCH_SIZE` messages or `BATCH_SECONDS`, whichever comes first, and at the end of the run): one
synchronous=FULL transaction per message cost more than sending it. A callback that arrives before
its batch is written is still attributed, since the receiver joins events to sent messages only
when they are read. A send failure is rare and is written at once.
"""

from __future__ import annotations

import queue
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from reference_impl.errors import PlatformError
from reference_impl.protocol.meta import Meta, MetaError
from reference_impl.receiver.store import SentMessage
from reference_impl.sender import errors as e
from reference_impl.sender.address import address_problem
from reference_impl.sender.message import (
    MAX_LABEL,
    Content,
    MessageError,
    Template,
)
from reference_impl.sender.provider import Provider
from reference_impl.sender.session import (
    DEFAULT_RETRIES,
    SendFailed,
    SmtpSession,
    open_session,
    tls_context,
)
from reference_impl.sender.suppression import Suppression

__all__ = [
    "BATCH_SECONDS",
    "BATCH_SIZE",
    "DEFAULT_CONNECTIONS",
    "Campaign",
    "CampaignError",
    "CampaignReport",
    "Result",
    "SendStore",
    "Suppressed",
    "first_message_id",
]

DEFAULT_CONNECTIONS = 4
BATCH_SIZE = 500
BATCH_SECONDS = 0.1
NOT_RECORDED = "{count} sent messages (from {first}): {kind}: {reason}"
UNEXPECTED = "unexpected {kind} in the sender (a bug; please report it): {reason}"
BAD_RECIPIENT = "recipient {problem}"
CANNOT_START = "the campaign cannot start: {problems}"


class CampaignError(PlatformError, ValueError):
    """A campaign cannot start (bad label, variant or empty audience); nothing was sent."""


class SendStore(Protocol):
    def record_sent(self, messages: Iterable[SentMessage]) -> None: ...
    def record_send_failure(self, recipient: str, meta: str, error: str, detail: str) -> None: ...
    def min_message_id(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Result:
    """What happened to one recipient: sent, or the section 6 error and why."""

    index: int
    recipient: str
    meta: str | None
    message_id: int
    error: str | None = None
    failure: e.Failure | None = None


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A recipient not mailed: the receiver has them unsubscribed, by `cause` (an event type)."""

    recipient: str
    cause: str


@dataclass
class CampaignReport:
    label: str
    variant: int
    results: list[Result] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    seconds: float = 0.0
    record_errors: list[str] = field(default_factory=list)

    @property
    def sent(self) -> list[Result]:
        return [r for r in self.results if r.error is None]

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.error is not None]

    def errors(self) -> Counter[str]:
        return Counter(r.error for r in self.results if r.error is not None)


def first_message_id(store: SendStore | None, now_us: int | None = None) -> int:
    """Message ids are negative (as in the vendor samples) and count down from here.

    Starting from the clock in microseconds keeps ids unique across runs; starting below every id
    the store already holds keeps them unique even for campaigns started within a moment.
    """
    first = -(time.time_ns() // 1000 if now_us is None else now_us)
    lowest = store.min_message_id() if store is not None else None
    return first if lowest is None else min(first, lowest - 1)


def _check_campaign(
    provider: Provider, password: str | None, label: str, variant: int, recipients: Sequence[str]
) -> None:
    """Every reason the campaign cannot start, at once, before anything is sent."""
    problems = []
    try:
        Meta("x@example.com", 0, 0, 0, label, 0).encode()
    except MetaError as exc:
        problems.append(f"label: {exc.reason}")
    if len(label) > MAX_LABEL:
        problems.append(f"label: at most {MAX_LABEL} characters, got {len(label)}")
    if isinstance(variant, bool) or not isinstance(variant, int) or variant < 0:
        problems.append(f"variant: must be a non-negative integer, got {variant!r}")
    if not recipients:
        problems.append("audience: no recipients")
    if password is None and (missing := provider.secret_problem()) is not None:
        problems.append(missing)
    if problems:
        raise CampaignError(CANNOT_START.format(problems="; ".join(problems)))


class _SentBatch:
    """Sent messages waiting for one transaction; flushed when full, on a timer, and at close."""

    def __init__(self, store: SendStore, errors: list[str], lock: threading.Lock) -> None:
        self.store = store
        self.errors = errors
        self.errors_lock = lock
        self.pending: list[SentMessage] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.timer = threading.Thread(target=self._tick, name="bounceback-record", daemon=True)
        self.timer.start()

    def add(self, message: SentMessage) -> None:
        with self.lock:
            self.pending.append(message)
            full = len(self.pending) >= BATCH_SIZE
        if full:
            self.flush()

    def _tick(self) -> None:
        while not self.stopped.wait(BATCH_SECONDS):
            self.flush()

    def flush(self) -> None:
        with self.lock:
            batch, self.pending = self.pending, []
            if not batch:
                return
            try:
                self.store.record_sent(batch)
            except Exception as exc:
                problem = NOT_RECORDED.format(
                    count=len(batch), first=batch[0].recipient, kind=type(exc).__name__, reason=exc
                )
                with self.errors_lock:
                    self.errors.append(problem)

    def close(self) -> None:
        """Stop the timer and write what is left: nothing sent goes unrecorded on a normal exit."""
        self.stopped.set()
        self.timer.join()
        self.flush()


@dataclass
class Campaign:
    """Everything a send needs; `run()` sends and returns the report."""

    provider: Provider
    recipients: Sequence[str]
    label: str
    variant: int = 0
    store: SendStore | None = None
    receiver_url: str | None = None
    content: Content = field(default_factory=Content)
    connections: int = DEFAULT_CONNECTIONS
    retries: int = DEFAULT_RETRIES
    context: ssl.SSLContext | None = None
    password: str | None = None
    suppression: Suppression | None = None
    on_result: Callable[[Result], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _record_errors: list[str] = field(default_factory=list, repr=False)
    _batch: _SentBatch | None = field(default=None, repr=False)

    def suppressed(self) -> list[Suppressed]:
        """The recipients the receiver has unsubscribed; asked once per campaign, before sending."""
        if self.suppression is None:
            return []
        found = []
        for recipient in dict.fromkeys(self.recipients):
            if (cause := self.suppression.cause(recipient)) is not None:
                found.append(Suppressed(recipient, cause))
        return found

    def run(self, suppressed: list[Suppressed] | None = None) -> CampaignReport:
        """Send to every recipient but the suppressed ones (`suppressed()` unless given)."""
        password = self.password if self.password is not None else self.provider.secret()
        _check_campaign(self.provider, password, self.label, self.variant, self.recipients)
        started = time.monotonic()
        if suppressed is None:
            suppressed = self.suppressed()
        skipped = {s.recipient for s in suppressed}
        recipients = [r for r in self.recipients if r not in skipped]
        first = first_message_id(self.store)
        jobs: queue.SimpleQueue[tuple[int, str] | None] = queue.SimpleQueue()
        workers = max(1, min(self.connections, len(recipients)))
        for job in enumerate(recipients):
            jobs.put(job)
        for _ in range(workers):
            jobs.put(None)
        results: list[Result | None] = [None] * len(recipients)
        context = tls_context(self.provider, self.context)
        template = Template(
            self.provider,
            account_id=self.provider.account_id,
            label=self.label,
            variant=self.variant,
            receiver_url=self.receiver_url,
            content=self.content,
        )
        threads = [
            threading.Thread(
                target=self._worker,
                args=(jobs, results, first, context, password, template),
                name=f"bounceback-send-{n}",
                daemon=True,
            )
            for n in range(workers)
        ]
        if self.store is not None:
            self._batch = _SentBatch(self.store, self._record_errors, self._lock)
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            if self._batch is not None:
                self._batch.close()
                self._batch = None
        report = CampaignReport(
            self.label, self.variant, [r for r in results if r is not None], list(suppressed)
        )
        report.seconds = time.monotonic() - started
        report.record_errors = list(self._record_errors)
        return report

    def _worker(
        self,
        jobs: queue.SimpleQueue[tuple[int, str] | None],
        results: list[Result | None],
        first: int,
        context: ssl.SSLContext,
        password: str | None,
        template: Template,
    ) -> None:
        session: SmtpSession | None = None
        try:
            while (job := jobs.get()) is not None:
                index, recipient = job
                try:
                    result, session = self._send_one(
                        index, recipient, first - index, session, context, password, template
                    )
                except Exception as exc:
                    # A bug or an unforeseen error costs this recipient only, never the campaign.
                    if session is not None:
                        session.close()
                    session = None
                    failure = e.Failure(
                        e.SENDER, UNEXPECTED.format(kind=type(exc).__name__, reason=exc)
                    )
                    result = Result(
                        index, recipient, None, first - index, e.classify(failure), failure
                    )
                results[index] = result
                self._record(result)
        finally:
            if session is not None:
                session.quit()

    def _send_one(
        self,
        index: int,
        recipient: str,
        message_id: int,
        session: SmtpSession | None,
        context: ssl.SSLContext,
        password: str | None,
        template: Template,
    ) -> tuple[Result, SmtpSession | None]:
        sent_at = int(time.time())
        problem = address_problem(recipient)
        meta_text: str | None = None
        try:
            meta = Meta(
                recipient, self.provider.account_id, sent_at, self.variant, self.label, message_id
            )
            meta_text = meta.encode()
        except MetaError as exc:
            problem = problem or exc.reason
        if problem is not None or meta_text is None:
            failure = e.Failure(e.ADDRESS, BAD_RECIPIENT.format(problem=problem))
            return Result(
                index, recipient, meta_text, message_id, e.classify(failure), failure
            ), session
        try:
            data = template.render(meta, meta_text)
        except MessageError as exc:
            failure = e.Failure(e.DATA, str(exc))
            return Result(
                index, recipient, meta_text, message_id, e.classify(failure), failure
            ), session
        try:
            if session is None or session.client is None:
                session = open_session(self.provider, context, password, self.retries)
            session.send(recipient, data)
        except SendFailed as failed:
            if session is not None and session.client is None:
                session = None
            f = failed.failure
            return Result(index, recipient, meta_text, message_id, e.classify(f), f), session
        return Result(index, recipient, meta_text, message_id), session

    def _record(self, result: Result) -> None:
        """Into the receiver's store: a sent message into the next batch, a failure at once.

        A store that refuses a write is reported in the campaign report, and sending goes on.
        """
        try:
            self._store(result)
        except Exception as exc:
            with self._lock:
                self._record_errors.append(f"{result.recipient}: {type(exc).__name__}: {exc}")
        if self.on_result is not None:
            with self._lock:
                self.on_result(result)

    def _store(self, result: Result) -> None:
        if self.store is None or result.meta is None:
            return
        if result.error is None:
            if self._batch is not None:
                self._batch.add(
                    SentMessage(
                        result.recipient,
                        result.meta,
                        result.message_id,
                        self.label,
                        self.variant,
                        time.time(),
                    )
                )
        elif result.failure is not None:
            self.store.record_send_failure(
                result.recipient, result.meta, result.error, result.failure.detail
            )
