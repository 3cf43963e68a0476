"""The callback bodies a load user posts: fresh, partly failing, retried and oversized batches.

Pure and cheap: a load generator must not be the bottleneck it measures, so valid events come from
Faker and a counter (every meta unique to this process, so acknowledged events never collide across
workers), and the refusable events are drawn once per process from the public Hypothesis strategies
(`near_valid_events`) and mixed in.
"""

from __future__ import annotations

import json
import os
import random
import socket
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any

from faker import Faker

from simulator.protocol.expect import FAILED_TYPES, MAX_EVENTS

ACCOUNT_ID = 1568798080
LOAD_LABEL = "bounceback_load"
# Drawn once per process: enough variety without paying Hypothesis's cost per request.
REFUSABLE_POOL = 64
RETRY_MEMORY = 32


def draw_refusable(count: int = REFUSABLE_POOL) -> list[Any]:
    """Near-valid events from the public strategies: drawn once per process, as a draw costs
    Hypothesis's whole machinery (about a second for the pool on a quiet machine)."""
    from simulator.conformance.strategies import near_valid_events

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strategy = near_valid_events(huge=False)
        return [strategy.example() for _ in range(count)]


@dataclass(frozen=True, slots=True)
class Built:
    """One body to post and what kind it is (for the ledger and Locust's request names)."""

    kind: str
    body: bytes
    events: list[Any]


def _process_tag() -> int:
    """A number unique to this process on this host, folded into every message id."""
    return (hash(socket.gethostname()) ^ os.getpid()) & 0xFFFFF


class BatchFactory:
    """Builds load batches; one per Locust user process, not shared across threads."""

    def __init__(
        self, seed: int | None = None, batch_size: int = 100, refusable: list[Any] | None = None
    ) -> None:
        self.random = random.Random(seed)
        self.faker = Faker()
        self.faker.seed_instance(seed)
        self.batch_size = batch_size
        self.tag = _process_tag()
        self.counter = 0
        self.sent: deque[Built] = deque(maxlen=RETRY_MEMORY)
        self._refusable = refusable

    def _meta(self, email: str) -> str:
        self.counter += 1
        message_id = -((self.tag << 32) | self.counter)
        sent_at = 1730714617 + self.counter
        return f"{email}|{ACCOUNT_ID}|{sent_at}|20241104|0|{LOAD_LABEL}|{message_id}|"

    def valid_event(self) -> dict[str, Any]:
        email = self.faker.unique.email() if self.counter < 10_000 else self.faker.email()
        return {
            "type": self.random.choice(FAILED_TYPES),
            "email": email,
            "meta": self._meta(email),
            "description": self.faker.sentence(nb_words=4),
        }

    def refusable_events(self) -> list[Any]:
        if self._refusable is None:
            self._refusable = draw_refusable()
        return self._refusable

    def _built(self, kind: str, events: list[Any]) -> Built:
        body = json.dumps({"version": "v2", "events": {"failed": events}}).encode()
        return Built(kind, body, events)

    def fresh(self) -> Built:
        built = self._built("valid", [self.valid_event() for _ in range(self.batch_size)])
        self.sent.append(built)
        return built

    def partial(self) -> Built:
        events = [self.valid_event() for _ in range(self.batch_size)]
        for _ in range(max(1, self.batch_size // 10)):
            at = self.random.randrange(len(events) + 1)
            events.insert(at, self.random.choice(self.refusable_events()))
        built = self._built("partial", events)
        self.sent.append(built)
        return built

    def retry(self) -> Built:
        """An earlier batch again, byte for byte, as an ESP retries after a lost reply."""
        if not self.sent:
            return self.fresh()
        earlier = self.random.choice(self.sent)
        return Built("retry", earlier.body, earlier.events)

    def oversize(self) -> Built:
        """Over the limit: the receiver must refuse it whole, so nothing of it is acknowledged."""
        return self._built("oversize", [self.valid_event() for _ in range(MAX_EVENTS + 1)])
