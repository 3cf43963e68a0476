"""Nothing the receiver acknowledged is lost when it is killed under load (issue 12, durability).

A real `bounceback receiver` process takes callbacks from several senders at once and is killed
with SIGKILL mid-stream (under `--workers`, the master and its workers together, as a crashed
host would lose them); restarted on the same store, every callback it had answered 200 is there,
each event once. Run on one waitress process over SQLite and on `--workers 2` over PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.postgres import Cluster
from tests.reference_impl.receiver.logged import body
from tests.reference_impl.receiver.process import start_receiver_process

pytestmark = pytest.mark.e2e
SENDERS = 4
POSTS = 60  # per sender at most; the kill comes long before the last
EVENTS = 50  # per post, each for its own address
KILL_AFTER = 40  # acknowledged posts


def address(sender: int, post: int, event: int) -> str:
    return f"s{sender}-p{post}-e{event}@example.com"


@contextmanager
def receiver(db: str, *options: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A receiver in its own process group, on a fresh port; killed with the group on exit."""
    base, process = start_receiver_process(db, *options, start_new_session=True)
    try:
        yield base, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(20)


def send(base: str, sender: int, acknowledged: list[tuple[int, int]]) -> None:
    """Post until the receiver is gone; remember each post answered 200."""
    with httpx.Client(timeout=30) as client:
        for post in range(POSTS):
            payload = body(*[("spam", address(sender, post, e)) for e in range(EVENTS)])
            try:
                response = client.post(f"{base}/callback", content=payload)
            except httpx.HTTPError:
                return
            if response.status_code == 200:
                acknowledged.append((sender, post))


@pytest.fixture(params=["waitress", "gunicorn"])
def store_and_options(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, list[str]]:
    if request.param == "waitress":
        return str(tmp_path / "rx.sqlite3"), []
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database(), ["--workers", "2"]


def test_every_acknowledged_callback_survives_sigkill_under_load(
    store_and_options: tuple[str, list[str]],
) -> None:
    db, options = store_and_options
    acknowledged: list[tuple[int, int]] = []
    with receiver(db, *options) as (base, process):
        senders = [
            threading.Thread(target=send, args=(base, n, acknowledged)) for n in range(SENDERS)
        ]
        for thread in senders:
            thread.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(20)
        for thread in senders:
            thread.join(60)
    acked = list(acknowledged)
    assert len(acked) >= KILL_AFTER, "the load never reached the kill point"
    assert len(acked) < SENDERS * POSTS, "the kill came after the load ended"
    with receiver(db, *options) as (base, _), httpx.Client(base_url=base, timeout=60) as client:
        counts = client.get("/healthz").json()["counts"]
        for sender, post in acked:
            for event in (0, EVENTS - 1):
                profile = client.get(f"/api/profiles/{address(sender, post, event)}")
                assert profile.status_code == 200, (sender, post, event)
                assert profile.json()["subscribed"] is False
    # Posts in flight at the kill may have been stored without their 200 reaching the sender.
    assert counts["events"] >= len(acked) * EVENTS
    assert counts["events"] == counts["profiles"], "an event was raised twice"
