"""Benchmark: the receiver's cost per byte on the worst bodies we can build, over a valid batch.

A meta is attacker input and the regex engine holds the GIL, so an input that a check handles in
more than linear time stalls every thread of the receiver. Each hostile shape below is a body of
about the size of the valid baseline (a 100-event batch, about 16 KB), every event carrying one
hostile field: '@' runs, dotted runs, long labels, pipes, non-ASCII, long numbers, long
descriptions. Two measurements:

1. pure: `read_batch` on each body in this process, seconds per byte over the valid batch's;
2. end to end: `bounceback receiver` in a process of its own, each body POSTed (valid, then each
   shape, interleaved per round), request seconds per byte over the valid batch's.

Reported as min / median / max over rounds; the last line is the worst shape's median end-to-end
ratio, `ratio=N.NN` (target: at most 3).

    .venv/bin/python bench/adversarial.py [--rounds 5] [--events 100]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from _procs import python, spread, start, stop

from reference_impl.protocol.payload import PayloadRejected, read_batch

RECEIVER_LINE = re.compile(r"Callback URL: http://127\.0\.0\.1:(\d+)")
TAIL = "|1568798080|1730714617|20241104|0|wzrk_default|{}|"


def valid_event(i: int) -> dict[str, str]:
    email = f"user{i}@example.com"
    return {
        "type": "hard_bounce",
        "email": email,
        "meta": email + TAIL.format(i),
        "description": "x",
    }


def _meta(email: str, i: int) -> dict[str, str]:
    return {**valid_event(i), "meta": email + TAIL.format(i)}


SHAPES: dict[str, Callable[[int, int], dict[str, str]]] = {
    "a@@@@...|": lambda i, n: _meta("a" + "@" * n, i),
    "a@@@@...@ (no domain)": lambda i, n: {**valid_event(i), "meta": "a" + "@" * n + TAIL[:-3]},
    "a.a.a.a...@": lambda i, n: _meta("a." * (n // 2) + "@", i),
    "long label": lambda i, n: {
        **valid_event(i),
        "meta": valid_event(i)["meta"].replace("wzrk_default", "l" * n),
    },
    "pipes |||| in the email": lambda i, n: _meta("a" + "|" * n + "@b", i),
    "unicode éé...@": lambda i, n: _meta("é" * n + "@b", i),
    "long numbers": lambda i, n: {**valid_event(i), "meta": "a@b|" + "9" * n + TAIL[11:]},
    "email @@@": lambda i, n: {**valid_event(i), "email": "a" + "@" * n + "b"},
    "long description": lambda i, n: {**valid_event(i), "description": "d" * n},
}


def body(events: list[dict[str, str]]) -> bytes:
    return json.dumps({"version": "v2", "events": {"failed": events}}).encode()


def bodies(count: int) -> dict[str, bytes]:
    """The valid batch and, per shape, a body of about its size, the hostile field padded to fit."""
    valid = body([valid_event(i) for i in range(count)])
    per_event = len(valid) // count
    built = {"valid batch": valid}
    for name, shape in SHAPES.items():
        built[name] = body([shape(i, per_event - 90) for i in range(count)])
    return built


def pure_cost(data: bytes) -> float:
    started = time.perf_counter()
    with contextlib.suppress(PayloadRejected):
        read_batch(data)
    return (time.perf_counter() - started) / len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()
    built = bodies(args.events)
    pure: dict[str, list[float]] = {name: [] for name in built}
    wire: dict[str, list[float]] = {name: [] for name in built}
    with tempfile.TemporaryDirectory() as folder:
        receiver, port = start(
            [python(), "-m", "reference_impl.cli", "receiver", "--port", "0",
             "--db", str(Path(folder) / "bench.sqlite3")],
            RECEIVER_LINE,
        )  # fmt: skip
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                for _ in range(args.rounds):
                    for name, data in built.items():
                        pure[name].append(pure_cost(data))
                        started = time.perf_counter()
                        client.post("/callback", content=data).raise_for_status()
                        wire[name].append((time.perf_counter() - started) / len(data))
        finally:
            stop(receiver)
    base_pure = statistics.median(pure["valid batch"])
    base_wire = statistics.median(wire["valid batch"])
    print(f"{'shape':<26}{'bytes':>8}  pure ratio (min / median / max)  end-to-end ratio")
    for name, data in built.items():
        pure_ratio = [value / base_pure for value in pure[name]]
        wire_ratio = [value / base_wire for value in wire[name]]
        print(f"{name:<26}{len(data):>8}  {spread(pure_ratio):<31}  {spread(wire_ratio)}")
    worst_pure = max(statistics.median(pure[name]) for name in SHAPES) / base_pure
    worst = max(SHAPES, key=lambda name: statistics.median(wire[name]))
    print(f"worst pure ratio (read_batch alone): {worst_pure:.2f}")
    print(f"worst end-to-end shape: {worst}")
    print(f"ratio={statistics.median(wire[worst]) / base_wire:.2f}")


if __name__ == "__main__":
    main()
