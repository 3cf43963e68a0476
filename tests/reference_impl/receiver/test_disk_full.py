"""The receiver survives a full disk and loses nothing it acknowledged (issue 12, durability).

A real `bounceback receiver` process keeps its SQLite store on a 2 MiB tmpfs, half of it taken by
a filler file, and is posted valid v2 batches until the kernel answers ENOSPC. While the disk is
full every answer is the protocol's JSON error shape with a 5xx (never a 200 for a callback that
was not committed), reads answer JSON and the process stays up. Once the filler is removed the
same process accepts callbacks again, without a restart, and every callback it answered 200,
before or after, is in the log and projected: each address's profile shows the unsubscribe.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from reference_impl.protocol import replies as r
from reference_impl.receiver.responses import JSON_TYPE
from tests.diskfull import Filler, free_bytes, small_disk
from tests.reference_impl.receiver.logged import body
from tests.reference_impl.receiver.process import start_receiver_process

pytestmark = pytest.mark.e2e
EVENTS = 20  # per post, each for its own address
MAX_POSTS = 400  # the disk is full long before
REFUSED_IN_A_ROW = 5  # answers other than 200 that mean the disk is full, not a blip
FULL_POSTS = 10  # posted once the filler has taken the last free byte
AFTER_POSTS = 10  # posted once the space is back


def address(post: int, event: int) -> str:
    return f"p{post}-e{event}@example.com"


def payload(post: int) -> bytes:
    return body(*[("spam", address(post, e)) for e in range(EVENTS)])


@contextmanager
def receiver(db: Path, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`bounceback receiver` on a fresh port, its stderr kept in `log` (off the full disk)."""
    with open(log, "wb") as stderr:
        base, process = start_receiver_process(str(db), stderr=stderr, timeout=30)
    try:
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def assert_refused_as_json(response: httpx.Response) -> None:
    """A callback the receiver could not commit: the protocol's error shape, a 5xx to retry."""
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == JSON_TYPE
    assert response.json() == r.error_reply(500, r.SERVER_ERROR).body


def assert_json(response: httpx.Response) -> None:
    """A read while the disk is full: answered (200, or a 500 if it had to project) as JSON."""
    assert response.status_code in (200, 500), response.text
    assert response.headers["content-type"] == JSON_TYPE
    response.json()


def test_a_full_disk_loses_no_acknowledged_callback_and_heals_without_restart(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        filler = Filler(disk)
        filler.take(1024 * 1024)
        acknowledged: list[int] = []
        with (
            receiver(disk / "r.sqlite3", tmp_path / "receiver.log") as (base, process),
            httpx.Client(base_url=base, timeout=30) as client,
        ):
            refused_in_a_row = post = 0
            while refused_in_a_row < REFUSED_IN_A_ROW:
                assert post < MAX_POSTS, "the disk never filled"
                response = client.post("/callback", content=payload(post))
                if response.status_code == 200:
                    acknowledged.append(post)
                    refused_in_a_row = 0
                else:
                    assert_refused_as_json(response)
                    refused_in_a_row += 1
                post += 1
            before_full = len(acknowledged)
            assert before_full, "nothing was acknowledged before the disk filled"

            filler.take()  # the last free byte too
            assert free_bytes(disk) == 0
            for _ in range(FULL_POSTS):
                response = client.post("/callback", content=payload(post))
                if response.status_code == 200:  # a page freed inside the store was reused
                    acknowledged.append(post)
                else:
                    assert_refused_as_json(response)
                post += 1
            assert_json(client.get("/healthz"))
            assert_json(client.get(f"/api/profiles/{address(acknowledged[0], 0)}"))
            assert_json(client.get("/api/callbacks", params={"limit": 5}))
            assert process.poll() is None, "the receiver died on a full disk"

            filler.free()
            for _ in range(AFTER_POSTS):
                response = client.post("/callback", content=payload(post))
                assert response.status_code == 200, response.text
                acknowledged.append(post)
                post += 1

            counts = client.get("/healthz").json()["counts"]
            for acked in acknowledged:
                for event in range(EVENTS):
                    profile = client.get(f"/api/profiles/{address(acked, event)}")
                    assert profile.status_code == 200, (acked, event, profile.text)
                    assert profile.json()["subscribed"] is False, (acked, event)
            assert process.poll() is None
        print(
            f"posts={post} acknowledged_before_full={before_full}"
            f" acknowledged_total={len(acknowledged)} events={counts['events']}"
        )
        assert counts["events"] == len(acknowledged) * EVENTS
        assert counts["callbacks"] == len(acknowledged), "a refused callback was logged"
        assert counts["events"] == counts["profiles"], "an event was raised twice"
