"""`load verify`: acknowledged events are read from the reply, and the comparison is exact."""

from __future__ import annotations

import json

import httpx

from reference_impl.receiver.server import RunningReceiver
from simulator.load.ledger import Acknowledged, acknowledged_events
from simulator.load.verify import difference, logged_metas

GOOD = {"type": "spam", "email": "a@example.com", "meta": "a@example.com|1|2|19700101|0|l|1|"}
BAD = {"type": "nope", "email": "b@example.com", "meta": "b@example.com|1|2|19700101|0|l|2|"}


def test_acknowledged_are_the_events_the_reply_did_not_list_as_unprocessed():
    reply = {"UNPROCESSED_EVENTS": [{**BAD, "errorDescription": "Could not map event"}]}
    assert acknowledged_events([GOOD, BAD, GOOD], reply) == [
        (GOOD["meta"], "spam"),
        (GOOD["meta"], "spam"),
    ]


def test_an_echo_is_matched_as_json_value():
    """PROTOCOL.md section 4: an echo in another key order, its numbers the same doubles (Node's
    2^53 for 2^53 + 1, 0 for -0), is that event; a number at 15 digits is another double."""
    sent = {**BAD, "x_big": 2**53 + 1, "x_zero": -0.0, "x_score": 0.1234567890123456789}
    echoed = {"errorDescription": "Could not map event", **dict(reversed(sent.items()))}
    echoed.update(x_big=2**53, x_zero=0)
    assert acknowledged_events([GOOD, sent], {"UNPROCESSED_EVENTS": [echoed]}) == [
        (GOOD["meta"], "spam")
    ]
    echoed["x_score"] = 0.123456789012346  # JSON::PP's 15 digits: another value
    assert len(acknowledged_events([GOOD, sent], {"UNPROCESSED_EVENTS": [echoed]})) == 2
    echoed["x_score"] = sent["x_score"]
    echoed["meta"] = BAD["meta"][:-1]  # a protocol key must come back exactly
    assert len(acknowledged_events([GOOD, sent], {"UNPROCESSED_EVENTS": [echoed]})) == 2


def test_an_acknowledged_event_without_its_system_event_is_missing():
    verdict = difference([Acknowledged(GOOD["meta"], "spam", "valid")], [])
    assert not verdict.ok
    assert verdict.missing == [(GOOD["meta"], "spam")]


def test_a_retried_event_raised_twice_fails_and_once_passes():
    acks = [
        Acknowledged(GOOD["meta"], "spam", "valid"),
        Acknowledged(GOOD["meta"], "spam", "retry"),
    ]
    once = {"meta": GOOD["meta"], "type": "spam", "name": "Channel Unsubscribed"}
    assert difference(acks, [once]).ok
    assert difference(acks, [once, once]).raised_twice == [
        (GOOD["meta"], "spam", "Channel Unsubscribed")
    ]


def test_an_smtp_acceptance_counts_when_its_meta_came_back_in_a_callback():
    accepted = [Acknowledged(GOOD["meta"], "accepted", "smtp")]
    assert not difference(accepted, []).ok
    assert difference(accepted, [], [GOOD["meta"]]).ok


def test_logged_metas_are_read_from_every_body_of_the_reference_receivers_log(
    receiver: RunningReceiver,
) -> None:
    """Issue 13: the reference receiver lists each callback's summary unless asked for bodies;
    `load verify` asks (`body=true`), so an SMTP ledger's metas are still found in its log."""
    metas = [f"u{n}@example.com|1|2|19700101|0|l|{n}|" for n in range(3)]
    for meta in metas:
        event = {"type": "delivered", "email": meta.split("|")[0], "meta": meta}
        payload = {"version": "v2", "events": {"success": [event]}}
        assert httpx.post(f"{receiver.url}/callback", content=json.dumps(payload)).is_success
    assert sorted(logged_metas(receiver.url)) == metas
