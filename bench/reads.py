"""Benchmark: the receiver's read API as the store grows, each endpoint's median and p99 per size.

One receiver (`bounceback receiver`, its own process, SQLite, or with `--db postgresql` a database
on a throwaway durable cluster as `bench/scale.py` starts) reads a store that this process fills
in steps through the store's own path (fresh 1000-event batches validated by `read_batch`, logged
by `record_callback` and projected, as the callback endpoint would; much faster than over HTTP, so
a million events take minutes, not hours), with sent messages recorded for nine in ten metas, so a
tenth are unattributed. Each event is about a message of its own, with its own message id, as
`bounceback send` gives one id per message, so a label's report covers a quarter of the store's
messages (`--message-ids N` shares N ids instead, as this bench did with 200 before, which hid
how a label's report grew with its messages). At each size every endpoint is read `--reads`
times, endpoints interleaved, over one keep-alive connection; the callback detail
(`/api/callbacks/<id>`) opens the 1000-event callback that holds the probed profile's event. A
read that answers anything but 200 stops the bench.

Reported: median and p99 per endpoint and size. Last line: `ratio=<worst over endpoints of
median at the largest size / median at the smallest>`: 1.0 means reads stay flat as the store grows.

    .venv/bin/python bench/reads.py [--sizes 10000,100000] [--reads 50]
    .venv/bin/python bench/reads.py --sizes 10000,100000,1000000    # the README's figure
    .venv/bin/python bench/reads.py --message-ids 200    # 200 campaigns shared by every message
    .venv/bin/python bench/reads.py --db postgresql --sizes 10000,100000 --reads 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _procs import ROOT, python, rss_mb, start, stop

from reference_impl.protocol.payload import read_batch
from reference_impl.receiver.store import RawCallback, SentMessage
from reference_impl.receiver.stores import open_store

sys.path.insert(0, str(ROOT))
from tests.postgres import start_cluster

TYPES = ["hard_bounce", "soft_bounce", "spam", "unsubscribed"]
LABELS = ["wzrk_default", "spring_sale", "winback", "weekly_digest"]
BATCH = 1000
JSON = "application/json"
RECEIVER_LINE = re.compile(r"Callback URL: http://127\.0\.0\.1:(\d+)")


def message_id(n: int, message_ids: int) -> int:
    """The message id of event `n`'s message: its own, or one of `message_ids` shared ones."""
    return -(17000000 + (n % message_ids if message_ids else n))


def event(n: int, message_ids: int) -> tuple[dict[str, str], SentMessage]:
    email = f"user{n}@example.com"
    message = message_id(n, message_ids)
    label = LABELS[message % len(LABELS)]
    meta = f"{email}|1568798080|1730714617|20241104|0|{label}|{message}|"
    sent = SentMessage(email, meta, message, label, 0, 1730714617.0)
    return {"type": TYPES[n % 4], "email": email, "meta": meta, "description": "bench"}, sent


def fill(db: str, start_at: int, stop_at: int, message_ids: int) -> None:
    """Store events [start_at, stop_at) as fresh callbacks; record nine in ten as sent."""
    store = open_store(db)
    store.projection.stop()
    for first in range(start_at, stop_at, BATCH):
        pairs = [event(n, message_ids) for n in range(first, min(first + BATCH, stop_at))]
        store.record_sent([sent for n, (_, sent) in enumerate(pairs, first) if n % 10])
        body = json.dumps({"version": "v2", "events": {"failed": [e for e, _ in pairs]}}).encode()
        store.record_callback(RawCallback(body, None, JSON, time.time()), read_batch(body))
        if (first // BATCH) % 16 == 15:
            store.projection.catch_up()
    store.projection.catch_up()
    store.close()


def endpoints(size: int, message_ids: int) -> dict[str, str]:
    probe = size // 2
    return {
        "healthz": "/healthz",
        "events": "/api/events",
        "profile": f"/api/profiles/user{probe}@example.com",
        "events by message id": f"/api/events?message_id={message_id(probe, message_ids)}",
        "events by type": "/api/events?type=spam",
        "callbacks": "/api/callbacks",
        "callback detail": f"/api/callbacks/{probe // BATCH + 1}",
        "campaign": f"/api/campaigns/{message_id(probe, message_ids)}",
        "label": "/api/labels/spring_sale",
        "sent": "/api/sent",
        "unattributed": "/api/unattributed",
    }


def measure(base: str, size: int, reads: int, message_ids: int) -> dict[str, list[float]]:
    paths = endpoints(size, message_ids)
    timings: dict[str, list[float]] = {name: [] for name in paths}
    with httpx.Client(timeout=600) as client:
        for _ in range(reads):
            for name, path in paths.items():
                started = time.perf_counter()
                reply = client.get(base + path)
                timings[name].append(time.perf_counter() - started)
                if reply.status_code != 200:
                    raise SystemExit(f"GET {path}: {reply.status_code} {reply.text[:200]}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--reads", type=int, default=50)
    parser.add_argument(
        "--message-ids",
        type=int,
        default=0,
        help="share this many message ids among all messages (default 0: one per message)",
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    medians: dict[tuple[str, int], float] = {}
    cluster = None
    if args.db == "postgresql":
        try:
            cluster = start_cluster(durable=True)
        except RuntimeError as exc:  # the operator's setup: one line, no traceback
            print(f"bench/reads.py: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    with (
        contextlib.ExitStack() as cleanup,
        tempfile.TemporaryDirectory(prefix="bench-reads-") as folder,
    ):
        db = str(Path(folder) / "reads.sqlite3")
        if cluster is not None:
            cleanup.callback(cluster.stop)
            db = cluster.create_database("reads")
        receiver, port = start(
            [python(), "-m", "reference_impl.cli", "receiver", "--port", "0", "--db", db],
            RECEIVER_LINE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            filled = 0
            for size in sizes:
                started = time.perf_counter()
                fill(db, filled, size, args.message_ids)
                filled = size
                print(
                    f"{size:,} events stored and projected in {time.perf_counter() - started:.1f} s"
                )
                for name, values in measure(base, size, args.reads, args.message_ids).items():
                    ordered = sorted(values)
                    medians[(name, size)] = statistics.median(ordered)
                    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
                    print(
                        f"  {name:22} median {medians[(name, size)] * 1000:8.2f} ms"
                        f"  p99 {p99 * 1000:8.2f} ms"
                    )
            now, peak = rss_mb(receiver.pid)
            print(f"receiver RSS {now:.0f} MB, peak {peak:.0f} MB")
        finally:
            stop(receiver)
    names = {name for name, _ in medians}
    growth = {name: medians[(name, sizes[-1])] / medians[(name, sizes[0])] for name in names}
    for name in sorted(names, key=growth.get):
        print(
            f"  {name:22} x{growth[name]:.1f} ({medians[(name, sizes[-1])] * 1000:.2f} ms at"
            f" {sizes[-1]:,})"
        )
    worst = max(growth, key=growth.get)
    print(
        f"slowest growth: {worst}, x{growth[worst]:.1f} from {sizes[0]:,} to {sizes[-1]:,} events"
    )
    print(f"ratio={growth[worst]:.2f}")


if __name__ == "__main__":
    main()
