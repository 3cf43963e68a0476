"""Receiver throughput against a bare JSON endpoint on the same waitress server.

Both endpoints get the same 1000-event batch. The bare endpoint only parses the JSON and returns
the counts; the receiver validates every event and commits the callback to its log in SQLite
(WAL, synchronous=FULL) before answering. Phases alternate (receiver, bare, receiver, ...) so
machine noise hits both alike.

The receiver derives its event rows from the log after answering (see `reference_impl/store.py`).
After each receiver phase the bench reads `/healthz`, which waits for that projection, outside the
timed window so it never overlaps a bare phase; the time it takes is reported too, as a sustained
rate (acknowledged and projected) next to the acknowledged one that the target is about.

Throughput is measured the way ESPs post, with several concurrent senders (`--clients`, default
4, the server's thread count): SQLite does its work with the GIL released, so one request's commit
overlaps the next one's parsing. Latency is measured with one sender, for the 100 ms target.
A last pass posts fresh batches (new metas each time) so deduplication cannot flatter the result.

    .venv/bin/python bench/receiver.py [--requests 40] [--clients 4] [--rounds 5]

Last line: ratio=<receiver events/s / bare events/s>, same batch, concurrent senders,
acknowledged (committed to the log).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from flask import Flask, Response, request

from reference_impl.protocol.meta import Meta, build_meta
from reference_impl.receiver.app import ReceiverConfig, create_app
from reference_impl.receiver.server import BackgroundServer

TYPES = ["hard_bounce", "soft_bounce", "spam", "unsubscribed"]
BATCH = 1000


def batch(seed: int) -> bytes:
    failed = []
    for i in range(BATCH):
        email = f"user{seed}-{i}@example.com"
        meta = build_meta(Meta(email, 1568798080, 1730714617, 0, "wzrk_default", seed * BATCH + i))
        failed.append({"type": TYPES[i % 4], "email": email, "meta": meta, "description": "x"})
    return json.dumps({"version": "v2", "events": {"failed": failed}}).encode()


def add_bare_endpoint(app: Flask) -> None:
    def bare() -> Response:
        document = json.loads(request.get_data())
        total = len(document["events"]["failed"])
        body = {"TOTAL_EVENTS": total, "PROCESSED_EVENTS": total, "UNPROCESSED_EVENTS": []}
        return Response(json.dumps(body), mimetype="application/json")

    app.add_url_rule("/bare", "bare", bare, methods=["POST"])


def post(client: httpx.Client, path: str, body: bytes) -> float:
    start = time.perf_counter()
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    elapsed = time.perf_counter() - start
    if response.status_code != 200 or response.json()["PROCESSED_EVENTS"] != BATCH:
        raise SystemExit(f"{path}: unexpected answer {response.status_code} {response.text[:200]}")
    return elapsed


def throughput(url: str, path: str, bodies: Iterator[bytes], requests: int, clients: int) -> float:
    """Seconds for `requests` posts by `clients` senders, each on its own keep-alive connection."""
    work = [next(bodies) for _ in range(requests)]
    connections = [httpx.Client(base_url=url, timeout=60) for _ in range(clients)]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda n: post(connections[n % clients], path, work[n]), range(requests)))
    elapsed = time.perf_counter() - start
    for connection in connections:
        connection.close()
    return elapsed


def drain(client: httpx.Client) -> float:
    """Seconds until every acknowledged event is projected (a read catches the projection up).

    `client` is made once: a new one sets up a TLS context, which would count as projection."""
    start = time.perf_counter()
    if client.get("/healthz").status_code != 200:
        raise SystemExit("healthz failed")
    return time.perf_counter() - start


def run(requests: int, clients: int, rounds: int, folder: Path) -> float:
    app = create_app(ReceiverConfig(folder / "bench.sqlite3"))
    add_bare_endpoint(app)
    server = BackgroundServer(app, threads=clients).start()
    reader = httpx.Client(base_url=server.url, timeout=600)
    same = batch(0)

    def repeat() -> Iterator[bytes]:
        while True:
            yield same

    def fresh() -> Iterator[bytes]:
        seed = 1
        while True:
            yield batch(seed)
            seed += 1

    rates: dict[str, list[float]] = {
        "receiver": [],
        "bare": [],
        "receiver, fresh batches": [],
        "receiver, incl. projection": [],
        "fresh, incl. projection": [],
    }
    events = BATCH * requests
    throughput(server.url, "/callback", repeat(), clients, clients)
    throughput(server.url, "/bare", repeat(), clients, clients)
    drain(reader)
    fresh_bodies = fresh()
    for _ in range(rounds):
        elapsed = throughput(server.url, "/callback", repeat(), requests, clients)
        rates["receiver"].append(events / elapsed)
        rates["receiver, incl. projection"].append(events / (elapsed + drain(reader)))
        rates["bare"].append(events / throughput(server.url, "/bare", repeat(), requests, clients))
        elapsed = throughput(server.url, "/callback", fresh_bodies, requests, clients)
        rates["receiver, fresh batches"].append(events / elapsed)
        rates["fresh, incl. projection"].append(events / (elapsed + drain(reader)))
    with httpx.Client(base_url=server.url, timeout=60) as client:
        latency = [post(client, "/callback", next(fresh_bodies)) for _ in range(requests)]
        drain(reader)
        bare_latency = [post(client, "/bare", same) for _ in range(requests)]
    reader.close()
    server.stop()
    best = {name: statistics.median(values) for name, values in rates.items()}
    for name, rate in best.items():
        print(f"{name:24} {rate:9.0f} events/s  ({clients} concurrent senders, median of {rounds})")
    print(f"receiver latency, one sender: median {statistics.median(latency) * 1000:.1f} ms per")
    print(
        f"  durably stored 1000-event batch (bare: {statistics.median(bare_latency) * 1000:.1f} ms)"
    )
    for name in list(best)[2:]:
        print(f"{name} ratio: {best[name] / best['bare']:.2f}")
    return best["receiver"] / best["bare"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="posts per phase")
    parser.add_argument("--clients", type=int, default=4, help="concurrent senders")
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds; each figure is their median"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ratio = run(args.requests, args.clients, args.rounds, Path(folder))
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
