"""Locust user classes: `CallbackUser` posts v2 callbacks, `SmtpUser` sends mail carrying metas.

Locust loads this file (`bounceback load` passes it with `-f`), so settings arrive as environment
variables that the CLI sets: the ledger folder, the callback path and token, the batch size, the
messages per SMTP session. Each user records what its target acknowledged in the process's ledger.
"""

from __future__ import annotations

import os
import smtplib
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
from gevent.lock import Semaphore
from locust import FastHttpUser, User, between, events, task

from simulator.load.batches import BatchFactory, Built, draw_refusable
from simulator.load.ledger import Ledger, acknowledged_events
from simulator.load.settings import BATCH_ENV, LEDGER_ENV, PATH_ENV, PER_SESSION_ENV

MORE_THAN_ALLOWED = "More than allowed events received."
SENDER = "load@platform.example"

_ledger: Ledger | None = None
_refusable: list[Any] | None = None
_drawing = Semaphore()


def ledger() -> Ledger:
    """One ledger per process, opened on first use (Locust forks no threads of its own)."""
    global _ledger
    if _ledger is None:
        _ledger = Ledger(Path(os.environ.get(LEDGER_ENV, "bounceback-load-ledger")))
    return _ledger


def refusable_pool() -> list[Any]:
    """The process's near-valid events, drawn on a native thread of gevent's pool.

    Drawn on the event loop, they held it for seconds on a loaded machine: no heartbeat reached
    the master, which gave the workers up as missing and ended the run with nothing posted.
    """
    global _refusable
    with _drawing:
        if _refusable is None:
            _refusable = gevent.get_hub().threadpool.apply(draw_refusable)
    return _refusable


@events.quitting.add_listener
def _close_ledger(**_: object) -> None:
    if _ledger is not None:
        _ledger.close()


class CallbackUser(FastHttpUser):
    """An ESP posting callbacks: mostly fresh batches, some partial failures, retries, oversize."""

    wait_time = between(0, 0.05)

    def on_start(self) -> None:
        self.path = os.environ.get(PATH_ENV, "/callback")
        self.factory = BatchFactory(
            batch_size=int(os.environ.get(BATCH_ENV, "100")), refusable=refusable_pool()
        )

    def _post(self, built: Built) -> None:
        headers = {"Content-Type": "application/json"}
        with self.client.post(
            self.path, data=built.body, headers=headers, name=built.kind, catch_response=True
        ) as reply:
            if built.kind == "oversize":
                if reply.status_code == 400 and MORE_THAN_ALLOWED in (reply.text or ""):
                    reply.success()
                else:
                    reply.failure(f"oversize batch answered {reply.status_code}, not the 400")
                return
            if reply.status_code != 200:
                reply.failure(f"answered {reply.status_code}: {(reply.text or '')[:120]}")
                return
            try:
                document = reply.json()
            except ValueError:
                reply.failure("a 200 whose body is not JSON")
                return
            ledger().record(built.kind, acknowledged_events(built.events, document))

    @task(12)
    def valid(self) -> None:
        self._post(self.factory.fresh())

    @task(4)
    def partial_failure(self) -> None:
        self._post(self.factory.partial())

    @task(3)
    def retry(self) -> None:
        self._post(self.factory.retry())

    @task(1)
    def oversize(self) -> None:
        self._post(self.factory.oversize())


class SmtpUser(User):
    """A platform sending mail: one SMTP session per task, each message with a unique meta."""

    wait_time = between(0, 0.05)

    def on_start(self) -> None:
        target = urlsplit(self.host if "//" in (self.host or "") else f"smtp://{self.host}")
        self.address = (target.hostname or "127.0.0.1", target.port or 25)
        self.per_session = int(os.environ.get(PER_SESSION_ENV, "10"))
        self.factory = BatchFactory()

    def _fire(self, name: str, started: float, length: int, exc: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="SMTP",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=exc,
            context={},
        )

    @task
    def session(self) -> None:
        started = time.perf_counter()
        try:
            client = smtplib.SMTP(*self.address, timeout=30)
            client.ehlo("load.platform.example")
        except (OSError, smtplib.SMTPException) as exc:
            self._fire("connect", started, 0, exc)
            return
        accepted = []
        try:
            for _ in range(self.per_session):
                event = self.factory.valid_event()
                data = (
                    f"From: <{SENDER}>\r\nTo: <{event['email']}>\r\nSubject: load\r\n"
                    f"X-CleverTap_META: {event['meta']}\r\n\r\nload test\r\n"
                ).encode()
                sent = time.perf_counter()
                try:
                    client.sendmail(SENDER, [event["email"]], data)
                except smtplib.SMTPException as exc:
                    self._fire("message", sent, len(data), exc)
                    continue
                self._fire("message", sent, len(data), None)
                accepted.append((event["meta"], "accepted"))
            client.quit()
        except (OSError, smtplib.SMTPException) as exc:
            self._fire("session", started, 0, exc)
        finally:
            client.close()
            ledger().record("smtp", accepted)
