"""Benchmark: scaling the receiver out, SQLite against PostgreSQL with one and two worker processes.

Three receivers, each `bounceback receiver` in processes of its own: (a) on SQLite (waitress, the
embedded default), (b) on PostgreSQL with `--workers 1` (waitress) and (c) with `--workers 2`
(gunicorn), the database a throwaway durable cluster (fsync and `synchronous_commit` on) with an
operator's memory and WAL settings (`tests/postgres.py`, `OPERATOR_SETTINGS`). The load is the
same sustained flood against each, from Locust with two worker processes (`--processes 2`: a
master and two forked workers, headless): `--users` users posting fresh 1000-event batches back
to back for `--seconds` (`scale_users.py`; each batch one campaign of 1000 recipients, new metas
every post). The clock runs from the first POST until every
event acknowledged is projected and visible to a read (`/healthz`, which catches up first), so the
figure is events fully projected per second, not acknowledged.

Rounds interleave (a b c a b c ...), since this machine's speed drifts. Reported per receiver:
events/s (min / median / max over rounds), receiver CPU per event (the server processes) and
PostgreSQL server CPU per event (every process of the cluster), and the load generator's CPU per
event (Locust's master and workers), so it is plain which part takes the cores. Last line:
`ratio=<median PG 2 workers / PG 1 worker events/s>`.

    .venv/bin/python bench/scale.py [--rounds 3] [--seconds 15] [--users 6]

Without PostgreSQL's server binaries it says so in one line and exits 2; `--skip-without-postgres`
(what `make bench` passes) prints the same reason and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from _procs import ROOT, cpu_seconds, free_port, python, spread, start, stop

sys.path.insert(0, str(ROOT))
from tests.postgres import Cluster, start_cluster

RECEIVER_LINE = re.compile(r"Callback URL: http://127\.0\.0\.1:(\d+)")
USERS_FILE = Path(__file__).with_name("scale_users.py")
BATCH = 1000


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live children (gunicorn's workers, the cluster's
    backends); children already reaped are in the parent's own count."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [pid, *map(int, children.read_text().split())] if children.exists() else [pid]
    total = 0.0
    for each in pids:
        with contextlib.suppress(FileNotFoundError):  # a backend that just exited
            total += cpu_seconds(each)
    return total


def flood(base: str, seconds: int, users: int) -> tuple[float, int, float]:
    """Locust floods `base` for `seconds`; returns the seconds from its first POST until every
    event acknowledged is visible to a read, the events then visible, and Locust's CPU seconds
    (the master's and its forked workers', which it reaps)."""
    with tempfile.TemporaryDirectory() as marks:
        env = {**os.environ, "SCALE_MARKS": marks, "PYTHONPATH": str(ROOT)}
        command = [python(), "-m", "locust", "-f", str(USERS_FILE), "--host", base, "--headless"]
        command += ["--processes", "2", "--users", str(users), "--spawn-rate", str(users)]
        command += ["--run-time", f"{seconds}s", "--only-summary", "--loglevel", "WARNING"]
        # Locust's master and its workers talk over a port of their own: a free one, not the
        # fixed default, so another Locust on the machine cannot take it or be taken.
        port = str(free_port())
        command += ["--master-bind-host", "127.0.0.1", "--master-bind-port", port]
        command += ["--master-host", "127.0.0.1", "--master-port", port]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        locust = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 300
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if locust.returncode != 0:
            output = locust.stdout + locust.stderr
            raise SystemExit(f"Locust failed (exit {locust.returncode}):\n{output[-3000:]}")
        with httpx.Client(timeout=600) as http:
            events = http.get(f"{base}/healthz").json()["counts"]["events"]
        finished = time.time()
        started = min(float(mark.read_text()) for mark in Path(marks).iterdir())
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return finished - started, events, cpu


def receiver(db: str, workers: int) -> tuple[subprocess.Popen[str], str]:
    command = [python(), "-m", "reference_impl.cli", "receiver", "--port", "0", "--db", db]
    process, port = start([*command, "--workers", str(workers)], RECEIVER_LINE)
    return process, f"http://127.0.0.1:{port}"


@dataclass
class Figures:
    """One flood's results: events/s, and CPU microseconds per event of each part."""

    rate: float
    receiver: float
    database: float
    load: float


def run_one(db: str, workers: int, cluster: Cluster, args: argparse.Namespace) -> Figures:
    """One flood on a fresh receiver (and a fresh database)."""
    process, base = receiver(db, workers)
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    try:
        httpx.get(f"{base}/healthz", timeout=60)
        receiver_before, database_before = tree_cpu(process.pid), tree_cpu(postmaster)
        seconds, events, load = flood(base, args.seconds, args.users)
        receiver_cpu = tree_cpu(process.pid) - receiver_before
        database_cpu = tree_cpu(postmaster) - database_before
    finally:
        stop(process)
    if not events:
        raise SystemExit(f"no event reached {base} in {args.seconds} s")
    per_event = 1e6 / events
    return Figures(
        events / seconds, receiver_cpu * per_event, database_cpu * per_event, load * per_event
    )


def drop(cluster: Cluster, url: str) -> None:
    """Drop a flood's database, so the server's background work on it (autovacuum) is not
    counted in a later flood's CPU."""
    with psycopg.connect(cluster.url(), autocommit=True) as db:
        db.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15, help="Locust's --run-time per flood")
    parser.add_argument("--users", type=int, default=6, help="Locust users over its 2 workers")
    parser.add_argument(
        "--skip-without-postgres",
        action="store_true",
        help="print why and exit 0 when PostgreSQL cannot start (`make bench` runs every bench)",
    )
    args = parser.parse_args()
    try:
        cluster: Cluster = start_cluster(durable=True)
    except RuntimeError as exc:  # the operator's setup: one line, no traceback
        if args.skip_without_postgres:
            print(f"bench/scale.py: skipped: {exc}")
            return
        print(f"bench/scale.py: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    names = ("SQLite, 1 process", "PostgreSQL, --workers 1", "PostgreSQL, --workers 2")
    figures: dict[str, list[Figures]] = {name: [] for name in names}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for round_ in range(args.rounds):
                for n, name in enumerate(names):
                    if n == 0:
                        db, workers = str(Path(folder) / f"scale{round_}.sqlite3"), 1
                    else:
                        db, workers = cluster.create_database("scale"), n
                    result = run_one(db, workers, cluster, args)
                    if n:
                        drop(cluster, db)
                    figures[name].append(result)
                    print(
                        f"round {round_ + 1} {name}: {result.rate:,.0f} events/s"
                        f" (load average {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
    finally:
        cluster.stop()
    print(
        f"flood: Locust --processes 2, {args.users} users, {args.seconds} s of fresh"
        f" {BATCH}-event batches, fully projected; {args.rounds} rounds, min / median / max"
    )
    for name in names:
        rows = figures[name]
        print(
            f"{name:26} {spread([f.rate for f in rows], 0)} events/s; CPU us/event:"
            f" receiver {spread([f.receiver for f in rows], 1)},"
            f" PostgreSQL {spread([f.database for f in rows], 1)},"
            f" Locust {spread([f.load for f in rows], 1)}"
        )
    median = {name: statistics.median(f.rate for f in rows) for name, rows in figures.items()}
    print(f"PG 2 workers / SQLite: {median[names[2]] / median[names[0]]:.2f}")
    print(f"ratio={median[names[2]] / median[names[1]]:.2f}")


if __name__ == "__main__":
    main()
