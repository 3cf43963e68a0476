"""`StateClient` reads a paged, token-guarded read API whole, against the real reference receiver.

The reference receiver pages `/api/events` (100 by default) and, run with a read token, answers
401 to a read without it; the section 5 checks must see every event and pass via the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import settings

from reference_impl.receiver.server import RunningReceiver, running_receiver
from simulator.conformance import checks
from simulator.conformance.client import CallbackClient, StatePagingError, StateUnauthorized
from simulator.conformance.context import Context
from simulator.conformance.requirements import CATALOGUE, Needs
from simulator.conformance.transport import url_target

pytestmark = pytest.mark.e2e
READ_TOKEN = "read-6f1c2a9e44b7"
STATE_REQUIREMENTS = [r for r in CATALOGUE if r.needs is Needs.STATE]


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RunningReceiver]:
    """The reference receiver with its read API behind a bearer token."""
    with running_receiver(tmp_path / "guarded.sqlite3", read_token=READ_TOKEN) as running:
        yield running


def test_events_follows_next_past_the_first_page(receiver: RunningReceiver) -> None:
    """More events than one page (100) are all returned, filtered or not."""
    with CallbackClient(url_target(receiver.callback_url, receiver.url)) as client:
        ctx = Context(client, settings())
        message_id = ctx.fresh_message_id()
        failed = [ctx.event("hard_bounce", message_id=message_id) for _ in range(130)]
        assert client.post_events(failed=failed).status == 200
        state = client.state
        assert state is not None
        first = httpx.get(f"{receiver.url}/api/events").json()
        assert len(first["events"]) == 100 and first["next"] is not None
        assert len(state.events()) == 260  # each hard bounce raises two system events
        mine = state.events(message_id=message_id)
        assert len(mine) == 260
        assert {e["meta"] for e in mine} == {e["meta"] for e in failed}


def test_state_checks_pass_via_the_read_token(guarded: RunningReceiver) -> None:
    """With --state-token the section 5 checks read a guarded receiver and pass."""
    target = url_target(guarded.callback_url, guarded.url, READ_TOKEN)
    with CallbackClient(target) as client:
        ctx = Context(client, settings(max_examples=5, database=None))
        for requirement in STATE_REQUIREMENTS:
            checks.run(requirement, ctx)
    assert STATE_REQUIREMENTS


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_a_missing_or_wrong_read_token_is_named(
    guarded: RunningReceiver, token: str | None
) -> None:
    """A 401 from the read API says to pass --state-token, not an HTTP traceback."""
    with CallbackClient(url_target(guarded.callback_url, guarded.url, token)) as client:
        state = client.state
        assert state is not None
        with pytest.raises(StateUnauthorized, match="--state-token"):
            state.events()
        with pytest.raises(StateUnauthorized, match="401"):
            state.profile("nobody@example.com")


def test_a_cursor_that_does_not_move_is_reported() -> None:
    """A read API repeating its `next` is reported, not read forever."""

    def stuck(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"events": [{"meta": "m"}], "next": "same"})

    transport = httpx.MockTransport(stuck)
    target = url_target("http://receiver.invalid/callback", "http://receiver.invalid")
    with CallbackClient(target) as client:
        client.http = httpx.Client(transport=transport)
        state = client.state
        assert state is not None
        with pytest.raises(StatePagingError, match="next='same' twice"):
            state.events()


def test_the_token_stays_out_of_the_target_repr() -> None:
    """A report that prints the target never shows the read token."""
    target = url_target("http://h/callback", "http://h", READ_TOKEN)
    assert READ_TOKEN not in repr(target)
