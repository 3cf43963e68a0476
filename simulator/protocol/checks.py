"""The fake ESP's check of a receiver's reply: the model's answer, compared with `difference`. Pure.

`expect.py` is the ESP side's one statement of what a receiver must answer; this module only asks
it. Asking judges every meta and email of the batch again, on the dispatcher thread that shares
the GIL with the SMTP loop. So a reply is first compared with the one answer the ESP already
knows to be right: every event processed except those the model refused when the batch was built
(`ExpectedFailure`, whose descriptions the model gave). The same JSON value, types included, means
no problem; anything else, and any status but 200, goes to the model, which alone says what is
wrong. A property test (tests/simulator/protocol/test_checks.py) shows that the known answer is
one the model accepts; bench/reply_check.py measures what the shortcut saves.
"""

from __future__ import annotations

from typing import Any

from simulator.protocol import expect as x
from simulator.protocol.difference import Difference, NonEmptyString, difference, same
from simulator.protocol.payloads import ANY_DESCRIPTION, ExpectedFailure, request_order

# Verdicts: each problem string starts with one of them.
NOT_JSON = "response body is not JSON"
REPLY_DIFFERS = "reply differs from PROTOCOL.md section 4"


def known_reply(payload: dict[str, Any], expected: tuple[ExpectedFailure, ...]) -> Any:
    """The 200 body the ESP knows to be right for its own batch, or None if it cannot know one.

    None when the batch is over the limit or an expected failure's wording is left open.
    """
    sent = request_order(payload)
    if len(sent) > x.MAX_EVENTS or any(f.description == ANY_DESCRIPTION for f in expected):
        return None
    entries = [{**sent[f.index], x.ERROR_DESCRIPTION_KEY: f.description} for f in expected]
    return x.batch_reply(len(sent), entries)


def is_known_reply(known: Any, document: Any) -> bool:
    """Whether `document` is the JSON value `known`, without walking it in Python.

    Python's `==` is JSON equality for strings, lists and objects, but takes `True` for `1`. The
    events the ESP builds hold only strings (and lists of them), so the counts are the only
    numbers in a known reply, and their type is checked apart.
    """
    return (
        known == document
        and type(document[x.TOTAL_KEY]) is int
        and type(document[x.PROCESSED_KEY]) is int
    )


def model_differences(payload: dict[str, Any], status: int, document: Any) -> list[Difference]:
    """What the model finds wrong with the reply `status`, `document` to `payload`."""
    if status >= 500:
        # The page's error table has a 500 in the refusal shape; the ESP retries it later.
        return difference(x.refusal(NonEmptyString()), document, "body")
    model = x.expected_for(payload)
    want_status, want_body = model.choose(status, document)
    rows = [] if same(want_status, status) else [Difference("status", want_status, status)]
    return rows + difference(want_body, document, "body")


def check_response(
    payload: dict[str, Any],
    expected: tuple[ExpectedFailure, ...],
    status: int,
    body: bytes | str,
) -> list[str]:
    """Every way the response differs from what PROTOCOL.md section 4 says; empty if none."""
    try:
        document = x.read_reply(body)
    except ValueError as exc:
        return [f"{NOT_JSON}: {body[:200]!r} ({exc})"]
    if status == 200:
        known = known_reply(payload, expected)
        if known is not None and is_known_reply(known, document):
            return []
    return [
        f"{REPLY_DIFFERS}: {row.render().strip()}"
        for row in model_differences(payload, status, document)
    ]
