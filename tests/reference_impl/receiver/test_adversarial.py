"""Hostile input through a real server (issue 12): no small request may stall the receiver, and
nothing that is not strict JSON is ever answered or stored.

The regex engine holds the GIL, so a slow match stalls every thread. These tests bound a hang with
the client's timeout (generous: before the fix each request took 7 to 20 seconds, now
milliseconds); they do not time anything.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from reference_impl.protocol import replies as r
from reference_impl.receiver.server import RunningReceiver
from tests.reference_impl.strategies import envelope

TAIL = "|1568798080|1730714617|20241104|0|wzrk_default|1|"
HANG_BOUND = 5.0  # seconds: a bound on a hang, an order of magnitude over the fixed cost


def quadratic_meta(size: int) -> str:
    """The finding's shape: the old email pattern tried every '@' against every end."""
    return "a" + "@" * (size - len(TAIL) - 3) + "|" + TAIL[1:] + "x"


def adversarial_body(size: int = 33_000) -> bytes:
    meta = quadratic_meta(size)
    return envelope([{"type": "hard_bounce", "email": "u@example.com", "meta": meta}])


@pytest.fixture
def client(receiver: RunningReceiver) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=receiver.url, timeout=HANG_BOUND) as http:
        yield http


@pytest.mark.parametrize("size", [8_000, 33_000])
def test_a_quadratic_meta_is_answered_promptly_as_invalid_meta(
    client: httpx.Client, size: int
) -> None:
    """8 KB stays under the meta limit (the pattern itself is exercised), 33 KB is over it."""
    answer = client.post("/callback", content=adversarial_body(size))
    assert answer.status_code == 200
    assert [e[r.ERROR_DESCRIPTION_KEY] for e in answer.json()[r.UNPROCESSED_KEY]] == [
        r.INVALID_META
    ]


@pytest.mark.parametrize("size", [8_000, 33_000])
def test_a_quadratic_preference_link_is_answered_promptly(client: httpx.Client, size: int) -> None:
    """No token is needed for the page, so this was the cheapest stall of all."""
    answer = client.get(f"/preferences?meta={quadratic_meta(size)}")
    assert answer.status_code in (400, 403)


def test_a_normal_request_is_served_while_an_adversarial_one_is_in_flight(
    receiver: RunningReceiver,
) -> None:
    bodies = [adversarial_body() for _ in range(4)]
    outcomes: list[object] = []

    def hostile(body: bytes) -> None:
        with httpx.Client(timeout=60) as http:
            outcomes.append(http.post(f"{receiver.url}/callback", content=body).status_code)

    threads = [threading.Thread(target=hostile, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    with httpx.Client(base_url=receiver.url, timeout=HANG_BOUND) as http:
        normal = envelope(
            [{"type": "hard_bounce", "email": "u@example.com", "meta": "u@example.com" + TAIL}]
        )
        answer = http.post("/callback", content=normal)
        assert answer.json()[r.PROCESSED_KEY] == 1
        assert http.get("/healthz").status_code == 200
    for thread in threads:
        thread.join(60)
    assert outcomes == [200] * 4


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_non_json_literal_is_a_400_and_nothing_is_stored(
    client: httpx.Client, literal: str
) -> None:
    """Before: the literal was echoed in a 200 that was not JSON, and /api/callbacks replayed it."""
    event = {"type": "hard_bounce", "email": "u@example.com", "meta": "bad"}
    body = envelope([event]).replace(b'"meta": "bad"', f'"meta": "bad", "x": {literal}'.encode())
    assert literal.encode() in body
    answer = client.post("/callback", content=body)
    assert (answer.status_code, answer.json()) == (400, r.error_reply(400, r.READ_ERROR).body)
    assert client.get("/api/callbacks").json()["callbacks"] == []
    assert client.get("/healthz").json()["counts"]["callbacks"] == 0
    json.loads(answer.text, parse_constant=lambda c: pytest.fail(f"{c} in the reply"))
