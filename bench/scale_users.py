"""The Locust user of `bench/scale.py`: a sender flooding a receiver with fresh 1000-event batches.

Locust runs this file (`-f`) in each of its worker processes. A batch is one campaign of 1000
recipients (one message id, a fresh email and meta per event), as a platform's send produces; its
bytes are a template built once per process with the seed written in, so the load generator spends
its CPU on posting rather than on building JSON (on a 2-core machine every client CPU-second is
taken from the receivers). Seeds never repeat within a run (each receiver gets a fresh database):
each process counts up from its pid times a million. Every POST must be a 200 counting the whole
batch as processed, or Locust records a failure and the bench stops.

Each process writes when its first POST left to `SCALE_MARKS/<pid>` so the bench times the flood
from its first request, not from Locust's start-up.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

from locust import FastHttpUser, task

BATCH = 1000
TYPES = ("hard_bounce", "soft_bounce", "spam", "unsubscribed")
MARK = "SEEDMARK"
SEEDS_PER_PROCESS = 10**6


def template() -> bytes:
    failed = []
    for i in range(BATCH):
        email = f"user{MARK}-{i}@example.com"
        meta = f"{email}|1568798080|1730714617|20241104|0|wzrk_default|{MARK}|"
        failed.append({"type": TYPES[i % 4], "email": email, "meta": meta, "description": "x"})
    return json.dumps({"version": "v2", "events": {"failed": failed}}).encode()


_TEMPLATE = template()
_SEEDS = itertools.count(os.getpid() * SEEDS_PER_PROCESS)
_marked = False


def _mark_first_request() -> None:
    global _marked
    if not _marked:
        _marked = True
        folder = Path(os.environ["SCALE_MARKS"])
        (folder / str(os.getpid())).write_text(repr(time.time()))


class FloodUser(FastHttpUser):
    """Posts fresh batches back to back, no wait: a sustained flood."""

    @task
    def post(self) -> None:
        body = _TEMPLATE.replace(MARK.encode(), str(next(_SEEDS)).encode())
        _mark_first_request()
        headers = {"Content-Type": "application/json"}
        with self.client.post("/callback", data=body, headers=headers, catch_response=True) as r:
            if r.status_code != 200 or (r.json() or {}).get("PROCESSED_EVENTS") != BATCH:
                r.failure(f"POST answered {r.status_code}: {(r.text or '')[:200]}")
