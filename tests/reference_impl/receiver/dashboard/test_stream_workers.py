"""The dashboard's live feed under `--workers 2` on PostgreSQL: a stream held by one worker
process shows callbacks that either worker accepted, and the other worker keeps serving."""

from __future__ import annotations

import httpx
import pytest

from tests.reference_impl.receiver.dashboard.test_pages import parse_stream
from tests.reference_impl.receiver.test_workers import receiver_process
from tests.samples import sample_bytes

pytestmark = pytest.mark.e2e

POSTS = 6


def test_a_stream_on_one_worker_shows_callbacks_accepted_by_any_worker(postgres_url: str) -> None:
    """Streams were tested on one process only: under gunicorn each worker keeps its own stream
    slots, and the feed must come from the shared database, not from the worker's memory."""
    with receiver_process(postgres_url, "--workers", "2") as url:
        body = sample_bytes("callback-request.json")
        seen: list[int] = []
        stream = f"{url}/dashboard/stream"
        with httpx.Client(timeout=30) as held, held.stream("GET", stream) as live:
            lines = live.iter_lines()
            assert next(lines).startswith("retry:")
            # New connections each time, so the kernel spreads them over both workers.
            for _ in range(POSTS):
                assert httpx.post(f"{url}/callback", content=body).status_code == 200
            block: list[str] = []
            for line in lines:
                if line:
                    block.append(line)
                    continue
                seen += [d["id"] for k, d, _ in parse_stream("\n".join(block)) if k == "callback"]
                block = []
                if len(seen) == POSTS:
                    break
        assert seen == list(range(1, POSTS + 1)), "each callback streamed once, in order"
