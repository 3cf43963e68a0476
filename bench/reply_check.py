"""The fake ESP's reply check: the known-answer fast path against asking the model every time.

`check_response` accepts a reply that is exactly the answer the batch's expected failures give
(simulator/protocol/checks.py) and asks the expectation model only otherwise. This bench times
both ways on the same 1000-event batches and the same correct replies, interleaved round by
round (A B A B ...) because the machine is shared. Two batches: events with a meta (the usual
case) and events without one (each refused, as mail without X-CleverTap_META gives). Building the
batch is timed too, since the model judges each event without a meta there. The last line is the
median fast-path time over the model's, `ratio=0.05`.

    python bench/reply_check.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from simulator.protocol.checks import check_response, model_differences
from simulator.protocol.payloads import BuiltBatch, SpooledEvent, build_batch, request_order

META = "u{i}@example.com|1568798080|1730714617|20241104|0|wzrk_default|{i}|"
SIZE = 1000


def _events(with_meta: bool) -> list[SpooledEvent]:
    events: list[SpooledEvent] = []
    for i in range(SIZE):
        meta = META.format(i=i) if with_meta else None
        events.append((i, "failed", "hard_bounce", f"u{i}@example.com", meta, "550 5.1.1", None, 0))
    return events


def _correct_reply(built: BuiltBatch) -> str:
    sent = request_order(built.payload)
    refused = [
        {**sent[f.index], "errorDescription": f.description} for f in built.expected_failures
    ]
    body: dict[str, object] = {}
    if refused:
        body["error"] = f"{len(refused)} event(s) failed to process"
    body.update(TOTAL_EVENTS=SIZE, PROCESSED_EVENTS=SIZE - len(refused), UNPROCESSED_EVENTS=refused)
    return json.dumps(body)


def _ms(work: Callable[[], object], repeat: int = 5) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        work()
    return (time.perf_counter() - started) / repeat * 1000


def _measure(with_meta: bool, rounds: int) -> tuple[float, float]:
    """Median ms of the fast path and of the model on one batch; prints the line for it."""
    events = _events(with_meta)
    built = build_batch(events)
    text = _correct_reply(built)
    assert check_response(built.payload, built.expected_failures, 200, text) == []
    assert model_differences(built.payload, 200, json.loads(text)) == []
    fast, model, build = [], [], []
    for _ in range(rounds):
        fast.append(_ms(lambda: check_response(built.payload, built.expected_failures, 200, text)))
        model.append(_ms(lambda: model_differences(built.payload, 200, json.loads(text))))
        build.append(_ms(lambda: build_batch(events)))
    label = "with meta" if with_meta else "without meta"
    fast_ms, model_ms = statistics.median(fast), statistics.median(model)
    print(
        f"{label}: fast path {fast_ms:.2f} ms, model {model_ms:.2f} ms, building the batch"
        f" {statistics.median(build):.2f} ms per {SIZE}-event batch (median of {rounds} rounds)"
    )
    return fast_ms, model_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    results = [_measure(with_meta, rounds) for with_meta in (True, False)]
    fast_ms = sum(fast for fast, _ in results)
    model_ms = sum(model for _, model in results)
    print(f"ratio={fast_ms / model_ms:.2f}")


if __name__ == "__main__":
    main()
