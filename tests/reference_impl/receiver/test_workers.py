"""Several receiver processes on one PostgreSQL database behave as one receiver (issue 14).

Every test runs real processes: `bounceback receiver --db postgresql://... [--workers N]` as a
user starts it, against a throwaway cluster (skipped, with the reason, where no server is
installed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from reference_impl.receiver.store_postgres import PROJECTION_LOCK
from tests.postgres import Cluster
from tests.reference_impl.receiver.logged import body
from tests.reference_impl.receiver.test_cli import assert_one_line_operator_error, run_receiver
from tests.samples import sample_bytes
from tests.simulator.conformance.processes import CLI, run

pytestmark = pytest.mark.e2e


@contextmanager
def receiver_process(db: str, *options: str) -> Iterator[str]:
    """`bounceback receiver` on a free port; yields its base URL once it prints it."""
    command = [sys.executable, "-m", "reference_impl.cli", "receiver", "--port", "0", "--db", db]
    process = subprocess.Popen(
        [*command, *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    try:
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            seen.append(line)
            if line.startswith("Callback URL:") or not line:
                break
        assert seen[-1].startswith("Callback URL:"), "".join(seen)
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield seen[-1].split(":", 1)[1].strip().removesuffix("/callback")
    finally:
        process.terminate()
        process.wait(20)


@contextmanager
def two_receivers(db: str) -> Iterator[tuple[str, str]]:
    """Two receivers on different ports sharing `db`: one of two gunicorn workers, one plain."""
    with receiver_process(db, "--workers", "2") as first, receiver_process(db) as second:
        yield first, second


def test_several_workers_on_sqlite_are_refused_in_one_line_exit_2(tmp_path: Path) -> None:
    result = run_receiver("--db", str(tmp_path / "x.sqlite3"), "--workers", "2", cwd=tmp_path)
    line = assert_one_line_operator_error(result)
    assert "--workers 2 needs a PostgreSQL --db" in line


def test_an_unreachable_database_is_one_line_exit_2(
    tmp_path: Path, postgres_cluster: Cluster
) -> None:
    url = postgres_cluster.url("missing_db")
    for workers in ("1", "2"):
        result = run_receiver("--db", url, "--port", "0", "--workers", workers, cwd=tmp_path)
        line = assert_one_line_operator_error(result)
        assert "cannot open the store postgresql://postgres@127.0.0.1" in line


def test_a_callback_posted_to_either_receiver_is_visible_from_both(postgres_url: str) -> None:
    with two_receivers(postgres_url) as (first, second):
        payload = body(("spam", "a@example.com"))
        assert httpx.post(f"{first}/callback", content=payload).status_code == 200
        for base in (first, second):
            profile = httpx.get(f"{base}/api/profiles/a@example.com").json()
            assert profile["subscribed"] is False
        payload = body(("hard_bounce", "b@example.com"))
        assert httpx.post(f"{second}/callback", content=payload).status_code == 200
        for base in (first, second):
            assert httpx.get(f"{base}/healthz").json()["counts"]["events"] == 2


def test_a_retry_posted_to_the_other_receiver_raises_nothing_twice(postgres_url: str) -> None:
    payload = sample_bytes("callback-request.json")
    events = len(json.loads(payload)["events"]["failed"])
    with two_receivers(postgres_url) as (first, second):
        assert httpx.post(f"{first}/callback", content=payload).status_code == 200
        raised = httpx.get(f"{first}/api/events").json()["events"]
        assert httpx.post(f"{second}/callback", content=payload).status_code == 200
        for base in (first, second):
            assert httpx.get(f"{base}/api/events").json()["events"] == raised
            counts = httpx.get(f"{base}/healthz").json()["counts"]
            assert (counts["callbacks"], counts["events"]) == (2, 2 * events)


def test_concurrent_retries_to_both_receivers_count_each_event_once(postgres_url: str) -> None:
    """The same callback posted 24 times at once, half to each: every event first-seen once."""
    payload = body(*[("spam", f"u{i}@example.com") for i in range(200)])
    with two_receivers(postgres_url) as (first, second), ThreadPoolExecutor(8) as pool:
        targets = [first, second] * 12
        statuses = list(
            pool.map(
                lambda base: httpx.post(f"{base}/callback", content=payload).status_code, targets
            )
        )
        assert statuses == [200] * 24
        report = httpx.get(f"{second}/api/labels/spring").json()
        assert report["counts"]["spam"] == 200
        assert report["duplicates_ignored"] == 23 * 200
        assert len(httpx.get(f"{first}/api/events?limit=1000").json()["events"]) == 200


def test_exactly_one_projection_advances_at_a_time(postgres_url: str) -> None:
    """While another session holds the projection lock, no receiver projects anything (their
    background threads and a read both wait for it); once it is released, the read answers with
    every event, each once."""
    with two_receivers(postgres_url) as (first, second):
        holder = psycopg.connect(postgres_url)
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTION_LOCK,))
        for n, base in enumerate((first, second, first)):
            payload = body(*[("spam", f"p{n}-{i}@example.com") for i in range(50)])
            assert httpx.post(f"{base}/callback", content=payload).status_code == 200
        with ThreadPoolExecutor(1) as pool:
            read = pool.submit(lambda: httpx.get(f"{second}/healthz", timeout=60).json())
            time.sleep(1.0)
            assert not read.done(), "a read answered while the projection was locked"
            with psycopg.connect(postgres_url, autocommit=True) as probe:
                assert probe.execute(
                    "SELECT value FROM totals WHERE name = 'events'"
                ).fetchone() == (0,)
            holder.rollback()
            holder.close()
            counts = read.result()["counts"]
        assert (counts["callbacks"], counts["events"], counts["profiles"]) == (3, 150, 150)


def test_conform_passes_against_two_workers_on_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    """The conformance suite, MUST and SHOULD, against `--workers 2` on PostgreSQL."""
    with receiver_process(postgres_url, "--workers", "2") as base:
        result = run(
            [*CLI, "conform", f"{base}/callback", "--state-url", base], tmp_path, timeout=600
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
