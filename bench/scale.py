"""Benchmark: scaling the receiver out, SQLite against PostgreSQL with one and two worker processes.

Three receivers, each `bounceback receiver` in processes of its own: (a) on SQLite (waitress, the
embedded default), (b) on PostgreSQL with `--workers 1` (waitress) and (c) with `--workers 2`
(gunicorn), the database a throwaway cluster with its durable defaults (fsync on,
`synchronous_commit` on). The load is the same sustained flood against each: `--clients` client
processes with `--threads` senders each, posting fresh 1000-event batches (new metas every post),
`--batches` in all. The clock stops when every event is projected and visible to a read
(`/healthz`), so the figure is events fully projected per second, not acknowledged.

The clients are plain processes rather than Locust: on a 2-core machine every client CPU-second is
taken from the receivers, and Locust's master, workers and statistics cost more of it than a loop
posting prebuilt bodies; `bounceback load callbacks` (simulator/load) remains the tool for load
against a remote receiver. Rounds interleave (a b c a b c ...), since this machine's speed drifts.

Reported per receiver: events/s (min / median / max over rounds) and receiver CPU per event. Last
line: `ratio=<median PG 2 workers / PG 1 worker events/s>`.

    .venv/bin/python bench/scale.py [--rounds 3] [--batches 120] [--clients 2] [--threads 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _procs import ROOT, cpu_seconds, python, spread, start, stop
from receiver import BATCH, batch

sys.path.insert(0, str(ROOT))
from tests.postgres import Cluster, start_cluster

RECEIVER_LINE = re.compile(r"Callback URL: http://127\.0\.0\.1:(\d+)")


def client(base: str, seeds: list[int], threads: int, ready, go) -> None:
    """One client process: build its bodies first, then post them over `threads` senders."""
    from concurrent.futures import ThreadPoolExecutor

    bodies = [batch(seed) for seed in seeds]
    ready.put(len(bodies))
    go.wait()

    def send(share: list[bytes]) -> None:
        with httpx.Client(timeout=600) as http:
            for body in share:
                reply = http.post(
                    f"{base}/callback", content=body, headers={"Content-Type": "application/json"}
                )
                if reply.status_code != 200:
                    raise SystemExit(f"POST refused: {reply.status_code} {reply.text[:200]}")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, [bodies[i::threads] for i in range(threads)]))


def flood(base: str, first_seed: int, batches: int, clients: int, threads: int) -> float:
    """Seconds from the first POST until every event of the flood is visible to a read."""
    context = multiprocessing.get_context("fork")
    ready, go = context.Queue(), context.Event()
    seeds = list(range(first_seed, first_seed + batches))
    processes = [
        context.Process(target=client, args=(base, seeds[i::clients], threads, ready, go))
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get()
    started = time.perf_counter()
    go.set()
    for process in processes:
        process.join()
        if process.exitcode:
            raise SystemExit(f"a client failed (exit {process.exitcode})")
    expected = batches * BATCH
    with httpx.Client(timeout=600) as http:
        while http.get(f"{base}/healthz").json()["counts"]["events"] < expected:
            time.sleep(0.05)
    return time.perf_counter() - started


def receiver(db: str, workers: int) -> tuple[object, str, list[int]]:
    command = [python(), "-m", "reference_impl.cli", "receiver", "--port", "0", "--db", db]
    process, port = start([*command, "--workers", str(workers)], RECEIVER_LINE)
    base = f"http://127.0.0.1:{port}"
    return process, base, [process.pid]


def worker_pids(pid: int) -> list[int]:
    """The server's own pid and its children's (gunicorn's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *map(int, children.read_text().split())] if children.exists() else [pid]


def run_one(db: str, workers: int, seed: int, args: argparse.Namespace) -> tuple[float, float]:
    """events/s and receiver CPU microseconds per event for one flood on a fresh receiver."""
    process, base, _ = receiver(db, workers)
    try:
        httpx.post(f"{base}/callback", content=batch(10**6 + seed), timeout=60)
        httpx.get(f"{base}/healthz", timeout=60)
        pids = worker_pids(process.pid)
        cpu_before = sum(map(cpu_seconds, pids))
        seconds = flood(base, seed, args.batches, args.clients, args.threads)
        cpu = sum(map(cpu_seconds, pids)) - cpu_before
    finally:
        stop(process)
    events = args.batches * BATCH
    return events / seconds, cpu / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=120)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--threads", type=int, default=3)
    args = parser.parse_args()
    cluster: Cluster = start_cluster(durable=True)
    names = ("SQLite, 1 process", "PostgreSQL, --workers 1", "PostgreSQL, --workers 2")
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for round_ in range(args.rounds):
                for n, name in enumerate(names):
                    seed = (round_ * len(names) + n) * args.batches
                    if n == 0:
                        db, workers = str(Path(folder) / f"scale{round_}.sqlite3"), 1
                    else:
                        db, workers = cluster.create_database("scale"), n
                    rate, cpu = run_one(db, workers, seed, args)
                    rates[name].append(rate)
                    cpus[name].append(cpu)
                    print(f"round {round_ + 1} {name}: {rate:,.0f} events/s", flush=True)
    finally:
        cluster.stop()
    print(
        f"flood: {args.batches} fresh {BATCH}-event batches, {args.clients} client processes x"
        f" {args.threads} senders, fully projected; {args.rounds} rounds, min / median / max"
    )
    for name in names:
        print(
            f"{name:26} {spread(rates[name], 0)} events/s;"
            f" receiver CPU {spread(cpus[name], 1)} us/event"
        )
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"PG 2 workers / SQLite: {median[names[2]] / median[names[0]]:.2f}")
    print(f"ratio={median[names[2]] / median[names[1]]:.2f}")


if __name__ == "__main__":
    main()
