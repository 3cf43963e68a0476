"""Benchmark: the reference receiver, fully projected, against a bare endpoint on the same stack.

Two servers, each in a process of its own: the receiver (`bounceback receiver`, SQLite in WAL with
`synchronous=FULL`) and a bare endpoint on the same waitress server class that only parses the JSON
and returns the counts. The load generator is this process: `--clients` concurrent senders posting
fresh 1000-event batches (new metas every post, so deduplication cannot flatter the figure).

Each event has a message id of its own, as a campaign's callbacks do: the meta's message id is
unique per message, one message per recipient (PROTOCOL.md section 2, the vendor's samples, and
`bounceback send`, which counts them down from one to the next). So every event opens a report
tally of its own. `--message-ids N` gives the events of a batch N ids instead (as if an id named
a whole campaign, the shape `bench/reads.py` fills its store with), for comparison.

The receiver's clock stops when every event posted in the phase is projected and visible to a read
(`/healthz` counts them, and reads catch the projection up first), not when the last 200 arrived.
Each round runs a burst (`--burst` batches) and a sustained flood (`--flood` batches, at least 300
by default) against both servers, interleaved (receiver, bare, receiver, bare). Reported: events/s
and their ratio per phase (min / median / max over rounds), POST latency p50 / p99 in the flood,
the receiver's CPU per event and memory. Last line: `ratio=<median receiver / bare events/s,
sustained flood, fully projected>`.

    .venv/bin/python bench/receiver.py [--rounds 3] [--burst 40] [--flood 300] [--clients 4]
        [--message-ids N]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _procs import cpu_seconds, python, rss_mb, spread, start, stop

TYPES = ["hard_bounce", "soft_bounce", "spam", "unsubscribed"]
BATCH = 1000
RECEIVER_LINE = re.compile(r"Callback URL: http://127\.0\.0\.1:(\d+)")
BARE_SERVER = """
import json
from flask import Flask, Response, request
from reference_impl.receiver.server import BackgroundServer

app = Flask("bare")

@app.post("/callback")
def bare():
    document = json.loads(request.get_data())
    total = sum(len(group) for group in document["events"].values())
    body = {"TOTAL_EVENTS": total, "PROCESSED_EVENTS": total, "UNPROCESSED_EVENTS": []}
    return Response(json.dumps(body), mimetype="application/json")

@app.get("/healthz")
def healthz():
    return Response("{}", mimetype="application/json")

server = BackgroundServer(app, "127.0.0.1", 0, THREADS, 8 * 1024 * 1024)
print(f"bare endpoint listening on {server.url}", flush=True)
server.run()
"""


def batch(seed: int, message_ids: int = 0) -> bytes:
    """A fresh 1000-event batch: every meta unique to `seed`, realistic field values; each event
    its own message id, or one of `message_ids` shared by the batch's events."""
    failed = []
    for i in range(BATCH):
        email = f"user{seed}-{i}@example.com"
        message_id = seed * BATCH + (i % message_ids if message_ids else i)
        meta = f"{email}|1568798080|1730714617|20241104|0|wzrk_default|{message_id}|"
        failed.append({"type": TYPES[i % 4], "email": email, "meta": meta, "description": "x"})
    return json.dumps({"version": "v2", "events": {"failed": failed}}).encode()


def events_visible(client: httpx.Client, base: str) -> int:
    return int(client.get(f"{base}/healthz", timeout=600).json().get("counts", {}).get("events", 0))


def phase(
    base: str, bodies: list[bytes], clients: int, expected: int | None
) -> tuple[float, list[float]]:
    """Post every body over `clients` senders; seconds until all are acknowledged and, for the
    receiver (`expected` events), visible to a read. Returns the seconds and each POST's latency."""
    latencies: list[float] = []

    def sender(share: list[bytes]) -> None:
        with httpx.Client(timeout=600) as client:
            for body in share:
                sent = time.perf_counter()
                reply = client.post(
                    f"{base}/callback", content=body, headers={"Content-Type": "application/json"}
                )
                latencies.append(time.perf_counter() - sent)
                if reply.status_code != 200 or reply.json()["PROCESSED_EVENTS"] != BATCH:
                    raise SystemExit(f"POST refused: {reply.status_code} {reply.text[:200]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(sender, [bodies[i::clients] for i in range(clients)]))
    if expected is not None:
        with httpx.Client() as client:
            while events_visible(client, base) < expected:
                time.sleep(0.01)
    return time.perf_counter() - started, latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--flood", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="server threads, both servers")
    parser.add_argument(
        "--message-ids",
        type=int,
        default=0,
        help="message ids per batch, shared by its events (default: one per event, as sent)",
    )
    args = parser.parse_args()
    print(
        f"{args.clients} senders, fresh {BATCH}-event batches; per round a burst of {args.burst}"
        f" and a flood of {args.flood} batches to each server, interleaved; {args.rounds} rounds;"
        + (
            f" {args.message_ids} message ids a batch"
            if args.message_ids
            else " one message id an event"
        )
    )
    seed = 0
    rates: dict[tuple[str, str], list[float]] = {}
    flood_latency: dict[str, list[float]] = {"receiver": [], "bare": []}
    receiver_cpu = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-receiver-") as folder:
        receiver, receiver_port = start(
            [python(), "-m", "reference_impl.cli", "receiver", "--port", "0",
             "--threads", str(args.threads), "--db", str(Path(folder) / "bench.sqlite3")],
            RECEIVER_LINE,
        )  # fmt: skip
        bare, bare_port = start([python(), "-c", BARE_SERVER.replace("THREADS", str(args.threads))])
        bases = {
            "receiver": f"http://127.0.0.1:{receiver_port}",
            "bare": f"http://127.0.0.1:{bare_port}",
        }
        idle_rss = rss_mb(receiver.pid)[0]
        posted = 0
        try:
            for round_number in range(1, args.rounds + 1):
                for name, count in (("burst", args.burst), ("flood", args.flood)):
                    for server in ("receiver", "bare"):
                        bodies = [batch(seed + i, args.message_ids) for i in range(count)]
                        seed += count
                        before = cpu_seconds(receiver.pid)
                        expected = posted + count * BATCH if server == "receiver" else None
                        seconds, latencies = phase(bases[server], bodies, args.clients, expected)
                        if server == "receiver":
                            posted += count * BATCH
                            receiver_cpu += cpu_seconds(receiver.pid) - before
                        if name == "flood":
                            flood_latency[server].extend(latencies)
                        rates.setdefault((name, server), []).append(count * BATCH / seconds)
                        print(
                            f"round {round_number} {name} {server}: {count * BATCH / seconds:,.0f}"
                            " events/s" + (" (fully projected)" if server == "receiver" else "")
                        )
            now_rss, peak_rss = rss_mb(receiver.pid)
        finally:
            stop(receiver, bare)
    ratios = {}
    for name in ("burst", "flood"):
        ratios[name] = [
            r / b for r, b in zip(rates[(name, "receiver")], rates[(name, "bare")], strict=True)
        ]
        print(
            f"{name}: receiver {spread(rates[(name, 'receiver')], 0)} events/s, bare"
            f" {spread(rates[(name, 'bare')], 0)} events/s, ratio {spread(ratios[name])}"
        )
    for server, values in flood_latency.items():
        print(
            f"flood POST latency, {server}: p50 {percentile(values, 0.5) * 1000:.1f} ms,"
            f" p99 {percentile(values, 0.99) * 1000:.1f} ms"
        )
    print(f"receiver CPU per event: {receiver_cpu * 1e6 / posted:.1f} us (all phases)")
    print(
        f"receiver memory: {idle_rss:.0f} MB idle, {now_rss:.0f} MB after, peak {peak_rss:.0f} MB"
    )
    print(f"ratio={statistics.median(ratios['flood']):.2f}")


if __name__ == "__main__":
    main()
