"""The fake ESP's reply check agrees with the expectation model (issue 11).

`check_response` accepts a reply at once when it is the known answer built from the batch's
expected failures; every other reply is judged by the model. These properties hold the known
answer to the model, over every kind of event the spool can hold, and hold the check as a whole
to the model over replies that are wrong in the ways a receiver gets them wrong.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from simulator.conformance import strategies as cs
from simulator.protocol import expect as x
from simulator.protocol.checks import check_response, known_reply, model_differences
from simulator.protocol.payloads import (
    FAILED,
    SUCCESS,
    BuiltBatch,
    SpooledEvent,
    build_batch,
    request_order,
)

MUTATIONS = (None, "drop_meta", "drop_type", "unknown_type", "malformed_email")
TEXT = st.text(cs.ANY_TEXT, max_size=30)


@st.composite
def spooled_events(draw: st.DrawFn, event_id: int) -> SpooledEvent:
    """Any row the spool can hold: a scenario's outcome for any recipient and any meta."""
    group = draw(st.sampled_from((FAILED, SUCCESS)))
    kind = "delivered" if group == SUCCESS else draw(st.sampled_from(x.FAILED_TYPES))
    email = draw(cs.emails() | TEXT)
    meta = draw(st.none() | cs.metas() | cs.meta_values() | TEXT)
    description = draw(st.none() | TEXT)
    mutation = draw(st.sampled_from(MUTATIONS))
    return (event_id, group, kind, email, meta, description, mutation, draw(st.booleans()))


@st.composite
def built_batches(draw: st.DrawFn) -> BuiltBatch:
    size = draw(st.integers(0, 12))
    return build_batch([draw(spooled_events(event_id)) for event_id in range(size)])


@given(built_batches())
def test_the_known_answer_is_one_the_model_accepts(built: BuiltBatch) -> None:
    """CB-4.2/CB-4.10: the fast path never accepts a reply the model would fault."""
    # The fast comparison relies on it: the ESP's events hold only strings and lists of them.
    for event in request_order(built.payload):
        for value in event.values():
            assert isinstance(value, str) or all(isinstance(item, str) for item in value)
    known = known_reply(built.payload, built.expected_failures)
    if known is not None:
        assert model_differences(built.payload, 200, known) == []
        assert check_response(built.payload, built.expected_failures, 200, json.dumps(known)) == []


def _wrong_replies(known: dict[str, Any]) -> st.SearchStrategy[tuple[int, dict[str, Any]]]:
    """The known answer spoiled one way: a count, an entry, a description, the status."""
    options: list[tuple[int, dict[str, Any]]] = []
    for key in (x.TOTAL_KEY, x.PROCESSED_KEY):
        options.append((200, {**known, key: known[key] + 1}))
        options.append((200, {**known, key: float(known[key])}))
        if known[key] in (0, 1):
            options.append((200, {**known, key: bool(known[key])}))
    entries = known[x.UNPROCESSED_KEY]
    options.append((200, {**known, x.UNPROCESSED_KEY: [*entries, {"type": "spam"}]}))
    if entries:
        options.append((200, {**known, x.UNPROCESSED_KEY: entries[1:]}))
        options.append((200, {**known, x.UNPROCESSED_KEY: entries[::-1]}))
        changed = copy.deepcopy(entries)
        changed[0][x.ERROR_DESCRIPTION_KEY] = ""
        options.append((200, {**known, x.UNPROCESSED_KEY: changed}))
        options.append((200, {k: v for k, v in known.items() if k != x.ERROR_KEY}))
    options.append((400, x.refusal(x.MISSING_PARAMETERS)))
    options.append((200, {**known, "extra": True}))
    return st.sampled_from(options)


@given(data=st.data(), built=built_batches())
def test_the_check_agrees_with_the_model_on_wrong_replies(
    data: st.DataObject, built: BuiltBatch
) -> None:
    """CB-4.9/CB-4.10: whatever the receiver gets wrong, the check and the model agree on it."""
    known = known_reply(built.payload, built.expected_failures)
    if known is None:
        known = x.batch_reply(len(built.event_ids), [])
    status, body = data.draw(_wrong_replies(known))
    problems = check_response(built.payload, built.expected_failures, status, json.dumps(body))
    assert bool(problems) == bool(model_differences(built.payload, status, body))


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: _shuffled(item, rng) for key, item in items}
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    return value


@given(built=built_batches(), rng=st.randoms(use_true_random=False))
def test_key_order_whitespace_and_the_spelling_of_a_count_are_no_problem(
    built: BuiltBatch, rng: random.Random
) -> None:
    """PROTOCOL.md section 4: a reply is compared as a JSON value, key order and whitespace
    ignored, numbers as IEEE doubles. The known answer with its keys shuffled, pretty-printed and
    its counts written as `4.0` misses the fast path and is still found right by the model."""
    known = known_reply(built.payload, built.expected_failures)
    assume(known is not None)
    reply = _shuffled(known, rng)
    reply[x.TOTAL_KEY] = float(reply[x.TOTAL_KEY])
    text = json.dumps(reply, indent=rng.choice([None, 0, 2, "\t"]), separators=(" , ", " : "))
    assert check_response(built.payload, built.expected_failures, 200, text) == []
