"""Benchmark: the whole loop, 10,000 messages sent until every one is attributed, against send only.

A (the loop): `bounceback send` (its own process) posts a campaign over SMTP to the fake ESP (its
own process, `mixed` scenario), which posts v2 callbacks to the reference receiver (its own process,
SQLite); the clock stops when the receiver's read API holds an event for every message sent and
none unattributed. B (the baseline): the same `bounceback send` to bare aiosmtpd, which accepts and
discards (saying PIPELINING, as the fake ESP does, so both sends group their commands); the clock
stops when the send exits. Both sends record what they sent with `--store`, and mail every
recipient each round (`--no-suppress`: round 1's bounces and unsubscribes would be skipped next).
Rounds interleave A and B. Reported: seconds per side (min / median / max) and the ratio per round;
last line `ratio=<median A / B>` (target: at most 1.5). Nothing may be lost or misattributed: a
round whose events are not exactly the messages sent stops the bench.

    .venv/bin/python bench/end_to_end.py [--messages 10000] [--rounds 3] [--connections 4]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from _procs import cpu_seconds, python, rss_mb, spread, start, stop
from esp_smtp import PIPELINING_SERVER

RECEIVER_LINE = re.compile(r"Callback URL: http://127\.0\.0\.1:(\d+)")
ESP_LINE = re.compile(r"SMTP listening on 127\.0\.0\.1:(\d+)")
PROVIDER = """
nickname = "bench"
host = "127.0.0.1"
port = {port}
scheme = "smtp"
from_name = "Bench"
from_address = "campaigns@platform.example"
preference_center = "none"
account_id = 1568798080
timeout = 30
"""


def send(
    folder: Path, port: int, audience: Path, store: Path, label: str, connections: int
) -> float:
    provider = folder / f"provider-{port}.toml"
    provider.write_text(PROVIDER.format(port=port))
    command = [
        python(), "-m", "reference_impl.cli", "send", "--provider", str(provider),
        "--audience", str(audience), "--store", str(store), "--label", label,
        "--connections", str(connections), "--retries", "0", "--no-suppress",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"send failed ({done.returncode}): {done.stderr[-2000:] or done.stdout[-2000:]}"
        )
    return time.perf_counter() - started


def attributed(base: str, expected: int, timeout: float = 600.0) -> None:
    """Wait until the receiver holds `expected` events and none unattributed."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=600) as client:
        while True:
            events = client.get(f"{base}/healthz").json()["counts"]["events"]
            if events >= expected:
                reply = client.get(f"{base}/api/unattributed").json()
                items = next(v for v in reply.values() if isinstance(v, list))
                if events != expected or items:
                    raise SystemExit(
                        f"{events} events for {expected} messages, {len(items)} unattributed"
                    )
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"only {events} of {expected} events after {timeout} s")
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    print(
        f"{args.messages} messages per send, {args.connections} connections, {args.rounds} rounds"
    )
    loop_times, bare_times = [], []
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as name:
        folder = Path(name)
        audience = folder / "audience.csv"
        audience.write_text(
            "email\n" + "".join(f"user{i}@example.com\n" for i in range(args.messages))
        )
        db = folder / "receiver.sqlite3"
        receiver, receiver_port = start(
            [python(), "-m", "reference_impl.cli", "receiver", "--port", "0", "--db", str(db)],
            RECEIVER_LINE,
        )
        base = f"http://127.0.0.1:{receiver_port}"
        esp, esp_port = start(
            [python(), "-m", "reference_impl.cli", "esp", "--smtp-port", "0", "--tls", "none",
             "--scenario", "mixed", "--callback-url", f"{base}/callback",
             "--spool", str(folder / "spool.sqlite3"), "--batch-delay", "0.2"],
            ESP_LINE,
        )  # fmt: skip
        bare, bare_port = start([python(), "-c", PIPELINING_SERVER])
        try:
            for round_number in range(1, args.rounds + 1):
                before = {p.pid: cpu_seconds(p.pid) for p in (receiver, esp)}
                started = time.perf_counter()
                send(folder, esp_port, audience, db, f"round{round_number}", args.connections)
                attributed(base, args.messages * round_number)
                loop_times.append(time.perf_counter() - started)
                used = {p.pid: cpu_seconds(p.pid) - before[p.pid] for p in (receiver, esp)}
                bare_times.append(
                    send(
                        folder,
                        bare_port,
                        audience,
                        folder / "bare.sqlite3",
                        "bare",
                        args.connections,
                    )
                )
                print(
                    f"round {round_number}: loop {loop_times[-1]:.1f} s (receiver CPU"
                    f" {used[receiver.pid]:.1f} s, fake ESP CPU {used[esp.pid]:.1f} s),"
                    f" send only {bare_times[-1]:.1f} s"
                )
            rss = {label: rss_mb(p.pid) for label, p in (("receiver", receiver), ("fake ESP", esp))}
        finally:
            stop(receiver, esp, bare)
    ratios = [loop / only for loop, only in zip(loop_times, bare_times, strict=True)]
    print(f"loop until attributed: {spread(loop_times, 1)} s; send only: {spread(bare_times, 1)} s")
    print(f"loop / send-only per round: {spread(ratios)}")
    for label, (now, peak) in rss.items():
        print(f"{label} RSS {now:.0f} MB, peak {peak:.0f} MB")
    print(f"ratio={statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
