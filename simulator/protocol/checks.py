"""Check each receiver response against PROTOCOL.md section 4. Pure.

Written from the protocol text, independently of the reference receiver, so that a bug in the
receiver's replies shows up here as a listed problem rather than being agreed with.
"""

from __future__ import annotations

import json
from typing import Any

from simulator.protocol.payloads import ExpectedFailure, request_order

TOTAL = "TOTAL_EVENTS"
PROCESSED = "PROCESSED_EVENTS"
UNPROCESSED = "UNPROCESSED_EVENTS"
ERROR = "error"
ERROR_DESCRIPTION = "errorDescription"
MAX_EVENTS = 1000
TOO_MANY_EVENTS = "More than allowed events received."

# Verdicts, one per kind of difference; each problem string starts with one of them.
NOT_JSON = "response body is not a JSON object"
MISSING_COUNT = "response lacks an integer count"
COUNT_INVARIANT = "TOTAL_EVENTS != PROCESSED_EVENTS + len(UNPROCESSED_EVENTS)"
WRONG_TOTAL = "TOTAL_EVENTS is not the number of events sent"
WRONG_UNPROCESSED = "UNPROCESSED_EVENTS are not the failed events in request order"
WRONG_DESCRIPTION = "errorDescription differs from the expected one"
WRONG_ERROR_KEY = "error message does not match the unprocessed count"
WRONG_STATUS = "status does not match the batch"
NONZERO_ON_REFUSAL = "a refused batch must report zero counts and no unprocessed events"


def _count(body: dict[str, Any], key: str, problems: list[str]) -> int | None:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{MISSING_COUNT}: {key}={value!r}")
        return None
    return value


def _parse(body: bytes | str) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


def _check_refusal(document: dict[str, Any], problems: list[str]) -> None:
    if not isinstance(document.get(ERROR), str) or not document.get(ERROR):
        problems.append(f"{WRONG_ERROR_KEY}: a refusal needs a non-empty 'error'")
    counts = (document.get(TOTAL), document.get(PROCESSED), document.get(UNPROCESSED))
    if counts != (0, 0, []):
        problems.append(f"{NONZERO_ON_REFUSAL}: got {counts!r}")


def _check_success(
    document: dict[str, Any],
    sent: list[dict[str, Any]],
    expected: tuple[ExpectedFailure, ...],
    problems: list[str],
) -> None:
    total = _count(document, TOTAL, problems)
    processed = _count(document, PROCESSED, problems)
    unprocessed = document.get(UNPROCESSED)
    if not isinstance(unprocessed, list):
        problems.append(f"{MISSING_COUNT}: {UNPROCESSED} is not a list")
        return
    if total is not None and processed is not None and total != processed + len(unprocessed):
        problems.append(f"{COUNT_INVARIANT}: {total} != {processed} + {len(unprocessed)}")
    if total is not None and total != len(sent):
        problems.append(f"{WRONG_TOTAL}: {total}, sent {len(sent)}")
    error = document.get(ERROR)
    wanted_error = f"{len(unprocessed)} event(s) failed to process" if unprocessed else None
    if error != wanted_error:
        problems.append(f"{WRONG_ERROR_KEY}: {error!r}, expected {wanted_error!r}")
    wanted = [sent[failure.index] for failure in expected]
    echoed = [
        {k: v for k, v in entry.items() if k != ERROR_DESCRIPTION}
        if isinstance(entry, dict)
        else entry
        for entry in unprocessed
    ]
    if echoed != wanted:
        problems.append(f"{WRONG_UNPROCESSED}: expected {len(wanted)}, got {len(echoed)}")
        return
    for failure, entry in zip(expected, unprocessed, strict=True):
        description = entry.get(ERROR_DESCRIPTION)
        if not isinstance(description, str) or not description.startswith(failure.description):
            problems.append(
                f"{WRONG_DESCRIPTION}: event {failure.index} got {description!r}, "
                f"expected {failure.description or 'any text'!r}"
            )


def check_response(
    payload: dict[str, Any],
    expected: tuple[ExpectedFailure, ...],
    status: int,
    body: bytes | str,
) -> list[str]:
    """Every way the response differs from what section 4 says it must be; empty if none."""
    problems: list[str] = []
    sent = request_order(payload)
    document = _parse(body)
    if document is None:
        return [f"{NOT_JSON}: {body[:200]!r}"]
    oversize = len(sent) > MAX_EVENTS
    if status == 200:
        if oversize:
            problems.append(f"{WRONG_STATUS}: 200 for {len(sent)} events (limit {MAX_EVENTS})")
        _check_success(document, sent, expected, problems)
    elif 400 <= status < 600:
        if oversize and status == 400 and document.get(ERROR) != TOO_MANY_EVENTS:
            problems.append(f"{WRONG_ERROR_KEY}: {document.get(ERROR)!r} for an oversized batch")
        if not oversize and 400 <= status < 500:
            problems.append(f"{WRONG_STATUS}: {status} for a well-formed batch")
        _check_refusal(document, problems)
    else:
        problems.append(f"{WRONG_STATUS}: unexpected status {status}")
    return problems
