"""The public strategies judged by the model, and the fuzzer's curl line for what they send."""

from __future__ import annotations

import json
import shlex
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from simulator.conformance import strategies as cs
from simulator.conformance.client import SentRequest
from simulator.protocol import expect as x


def _expected(payload: Any) -> x.Expected:
    return x.expected_response(json.dumps(payload).encode())


@given(cs.valid_batches(max_size=15))
def test_valid_batches_are_fully_processed_by_the_model(batch: dict[str, Any]) -> None:
    events = batch["events"]
    total = len(events["failed"]) + len(events.get("success", []))
    model = _expected(batch)
    assert (model.status, model.body) == (200, x.batch_reply(total, []))


@given(cs.mutated_events())
def test_mutations_are_labelled_as_the_model_judges_them(mutated: cs.Mutated) -> None:
    """A mutation labelled must-fail is refused by the model; the others may be processed."""
    verdict = x.judge_event(mutated.event)
    if mutated.must_fail:
        assert verdict.outcome is x.Outcome.UNPROCESSED, mutated.mutation
    else:
        assert verdict.outcome is not x.Outcome.UNPROCESSED, mutated.mutation


@given(cs.invalid_bodies())
def test_invalid_bodies_are_refused_by_the_model(content: bytes) -> None:
    assert x.expected_response(content).status == 400


@given(cs.meta_values())
def test_meta_values_are_strings(meta: str) -> None:
    assert isinstance(meta, str)


@given(st.binary(max_size=50) | st.text(max_size=50).map(str.encode))
def test_curl_command_reproduces_the_exact_body(content: bytes) -> None:
    """The fuzzer's curl line pipes exactly the sent bytes (checked by parsing the shell words)."""
    request = SentRequest(
        "POST", "http://127.0.0.1:1/callback", (("Content-Type", "x/y"),), content
    )
    words = shlex.split(request.as_curl())
    assert words[0] == "printf"
    if words[1] == "%s":
        assert words[2].encode() == content
    else:
        assert words[1] == "%b"
        assert bytes(int(h, 16) for h in words[2].split("\\x")[1:]) == content
