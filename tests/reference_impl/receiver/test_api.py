"""The receiver through a real waitress server: each response of PROTOCOL.md section 4.

Every response is validated against the served OpenAPI document on the way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_impl.protocol import replies as r
from reference_impl.receiver.server import RunningReceiver, running_receiver
from reference_impl.receiver.store import SentMessage
from tests.reference_impl.receiver.conftest import Backend
from tests.reference_impl.receiver.openapi_check import OpenAPIChecked
from tests.reference_impl.strategies import envelope, mixed_events
from tests.samples import sample, sample_bytes


@pytest.fixture
def api(receiver: RunningReceiver) -> Iterator[OpenAPIChecked]:
    client = OpenAPIChecked(receiver.url)
    yield client
    client.close()


def post(api: OpenAPIChecked, body: bytes, content_type: str = "application/json") -> Any:
    return api.request("POST", "/callback", content=body, headers={"content-type": content_type})


def stored(api: OpenAPIChecked) -> dict[str, int]:
    return api.request("GET", "/healthz").json()["counts"]


def test_vendor_sample_gets_the_page_success_response(api: OpenAPIChecked) -> None:
    response = post(api, sample_bytes("callback-request.json"))
    assert response.status_code == 200
    assert response.json() == sample("response-success.json")


def test_vendor_partial_failure_is_answered_as_the_page_shows(api: OpenAPIChecked) -> None:
    expected = sample("response-partial.json")
    good = sample("callback-request.json")["events"]["failed"][1:3]
    bad = [
        {k: v for k, v in entry.items() if k != "errorDescription"}
        for entry in expected["UNPROCESSED_EVENTS"]
    ]
    response = post(api, envelope([bad[0], good[0], bad[1], good[1]]))
    assert (response.status_code, response.json()) == (200, expected)


BAD_BODIES = {
    "empty": (b"", r.READ_ERROR),
    "invalid JSON": (b'{"version": "v2",', r.READ_ERROR),
    "invalid UTF-8": (b'{"version": "v2", "events": {"failed": ["\xc3\x28"]}}', r.READ_ERROR),
    "deep nesting": (b"[" * 50_000 + b"]" * 50_000, r.READ_ERROR),
    "array at top": (b"[]", r.MISSING_PARAMETERS),
    "scalar at top": (b"42", r.MISSING_PARAMETERS),
    "version missing": (b'{"events": {"failed": []}}', r.MISSING_PARAMETERS),
    "version v1": (b'{"version": "v1", "events": {"failed": []}}', r.MISSING_PARAMETERS),
    "events a list": (b'{"version": "v2", "events": []}', r.MISSING_PARAMETERS),
    "failed a string": (b'{"version": "v2", "events": {"failed": "x"}}', r.MISSING_PARAMETERS),
}


@pytest.mark.parametrize("name", BAD_BODIES)
def test_unusable_body_gets_400_and_stores_nothing(api: OpenAPIChecked, name: str) -> None:
    body, message = BAD_BODIES[name]
    response = post(api, body)
    assert (response.status_code, response.json()) == (400, r.error_reply(400, message).body)
    assert stored(api)["callbacks"] == 0


def test_1001_events_are_refused_whole_and_nothing_is_stored(api: OpenAPIChecked) -> None:
    event = sample("callback-request.json")["events"]["failed"][0]
    response = post(api, envelope([event] * 1001))
    assert response.json() == r.error_reply(400, r.TOO_MANY_EVENTS).body
    assert stored(api) == {
        "callbacks": 0,
        "events": 0,
        "system_events": 0,
        "profiles": 0,
        "sent_messages": 0,
    }


def test_1000_events_are_processed(api: OpenAPIChecked) -> None:
    event = sample("callback-request.json")["events"]["failed"][1]
    response = post(api, envelope([event] * 1000))
    assert response.json()["PROCESSED_EVENTS"] == 1000
    assert stored(api)["events"] == 1000


def test_wrong_content_type_with_json_body_is_processed(api: OpenAPIChecked) -> None:
    response = post(api, sample_bytes("callback-request.json"), content_type="text/plain")
    assert response.json() == sample("response-success.json")


def test_body_over_the_limit_gets_413_and_nothing_is_stored(tmp_path: Path) -> None:
    with running_receiver(tmp_path / "db.sqlite3", max_body_bytes=2048) as small:
        client = OpenAPIChecked(small.url)
        big = envelope([sample("callback-request.json")["events"]["failed"][0]] * 40)
        response = client.request("POST", "/callback", content=big)
        assert (response.status_code, response.json()) == (
            413,
            r.error_reply(413, r.BODY_TOO_LARGE).body,
        )
        chunked = client.request("POST", "/callback", content=iter([big[:1000], big[1000:]]))
        assert chunked.status_code == 413
        assert small.store.counts()["callbacks"] == 0
        client.close()


def test_token_is_required_and_compared_exactly(tmp_path: Path) -> None:
    with running_receiver(tmp_path / "db.sqlite3", token="s3cret") as guarded:
        client = OpenAPIChecked(guarded.url)
        body = sample_bytes("callback-request.json")
        missing = client.request("POST", "/callback", content=body)
        wrong = client.request("POST", "/callback/{token}", "/callback/s3cres", content=body)
        assert missing.status_code == wrong.status_code == 401
        assert wrong.json() == r.error_reply(401, r.UNAUTHORIZED).body
        assert guarded.store.counts()["callbacks"] == 0
        right = client.request("POST", "/callback/{token}", "/callback/s3cret", content=body)
        assert right.json() == sample("response-success.json")
        assert guarded.callback_url.endswith("/callback/s3cret")
        client.close()


def test_token_path_without_a_configured_token_is_not_found(api: OpenAPIChecked) -> None:
    response = api.request("POST", "/callback/{token}", "/callback/abc", content=b"{}")
    assert response.status_code == 404


def test_projection_fault_loses_nothing_that_was_acknowledged(
    receiver: RunningReceiver, backend: Backend
) -> None:
    """The 200 means the callback is in the log: if deriving its events fails, reads answer 500
    until the fault is gone, and then show every event."""
    backend.fail_inserts("events")
    client = OpenAPIChecked(receiver.url)
    body = sample_bytes("callback-request.json")
    assert client.request("POST", "/callback", content=body).status_code == 200
    assert client.request("GET", "/api/events").status_code == 500
    backend.allow_inserts("events")
    events = client.request("GET", "/api/events").json()["events"]
    assert {event["meta"] for event in events} == {
        event["meta"] for event in json.loads(body)["events"]["failed"]
    }
    client.close()


def test_store_fault_gets_500_with_the_documented_shape(
    receiver: RunningReceiver, backend: Backend
) -> None:
    """A real database fault (a trigger aborting the insert) rolls back and answers 500."""
    backend.fail_inserts("callbacks")
    client = OpenAPIChecked(receiver.url)
    response = client.request("POST", "/callback", content=sample_bytes("callback-request.json"))
    assert (response.status_code, response.json()) == (500, r.error_reply(500, r.SERVER_ERROR).body)
    assert backend.scalar("SELECT count(*) FROM callbacks") == 0
    client.close()


def test_retry_is_logged_but_raises_system_events_once(api: OpenAPIChecked) -> None:
    body = sample_bytes("callback-request.json")
    post(api, body)
    post(api, body)
    events = api.request("GET", "/api/events").json()["events"]
    assert [e["name"] for e in events] == [
        "Channel Unsubscribed",
        "Notification Failed",
        "Channel Unsubscribed",
        "Notification Failed",
        "Channel Unsubscribed",
    ]
    assert len(api.request("GET", "/api/callbacks").json()["callbacks"]) == 2


def test_read_endpoints_show_profile_events_and_campaign(api: OpenAPIChecked) -> None:
    post(api, sample_bytes("callback-request.json"))
    template = "/api/profiles/{email}"
    unsubscribed = api.request("GET", template, "/api/profiles/user1@example.com").json()
    soft = api.request("GET", template, "/api/profiles/usert5@example.com").json()
    assert (unsubscribed["subscribed"], soft["subscribed"]) == (False, True)
    assert api.request("GET", template, "/api/profiles/nobody@example.com").status_code == 404
    hard = api.request("GET", "/api/events", params={"message_id": -17005910}).json()["events"]
    assert {e["name"] for e in hard} == {"Notification Failed", "Channel Unsubscribed"}
    spam = api.request("GET", "/api/events", params={"type": "spam"}).json()["events"]
    assert spam[0]["properties"]["reason"] == "Marked as spam"
    report = api.request("GET", "/api/campaigns/{message_id}", "/api/campaigns/-17005905").json()
    assert report["counts"]["soft_bounce"] == 1
    missing = api.request("GET", "/api/campaigns/{message_id}", "/api/campaigns/12")
    assert missing.status_code == 404
    label = api.request("GET", "/api/labels/{label}", "/api/labels/wzrk_default").json()
    assert label["counts"]["spam"] == 1
    raw = api.request("GET", "/api/callbacks", params={"body": "true"}).json()["callbacks"][0]
    assert json.loads(raw["body"]) == sample("callback-request.json")
    assert api.request("GET", "/api/sent").json() == {"sent": [], "next": None}


def test_the_callback_list_gives_summaries_and_each_body_only_when_asked(
    api: OpenAPIChecked,
) -> None:
    """Issue 13: `/api/callbacks` costs the same whatever the callbacks hold. An item is the
    callback's summary (a few hundred bytes, even for a thousand events); `body=true` adds the
    body as received and the stored reply, as `/api/callbacks/<id>` gives them; both page by
    `next`, and the `Link` keeps `body=true`."""
    small = sample_bytes("callback-request.json")
    metas = [f"u{n}@example.com|9|1730714617|20241104|1|spring|5|" for n in range(1000)]
    large = envelope([{"type": "spam", "email": "u@example.com", "meta": m} for m in metas])
    post(api, small)
    post(api, large)
    summaries = api.request("GET", "/api/callbacks").json()
    assert summaries["next"] is None
    first, second = summaries["callbacks"]
    assert "body" not in second and "response" not in second
    assert (second["total"], second["processed"], second["unprocessed"]) == (1000, 1000, 0)
    assert (second["bytes"], second["content_type"]) == (len(large), "application/json")
    assert len(json.dumps(second)) < 400 < len(large) / 100
    paged: list[dict[str, Any]] = []
    params: dict[str, Any] = {"body": "true", "limit": 1}
    while True:
        page = api.request("GET", "/api/callbacks", params=params)
        paged += page.json()["callbacks"]
        if page.json()["next"] is None:
            break
        assert "body=true" in page.headers["Link"]
        params = {**params, "after": page.json()["next"]}
    assert [item["body"].encode() for item in paged] == [small, large]
    for item, summary in zip(paged, summaries["callbacks"], strict=True):
        assert {k: v for k, v in item.items() if k not in ("body", "response")} == summary
        path = f"/api/callbacks/{item['id']}"
        detail = api.request("GET", "/api/callbacks/{callback_id}", path).json()
        assert (detail["body"], detail["response"]) == (item["body"], item["response"])
    events = sample("callback-request.json")["events"]
    assert (first["bytes"], first["total"]) == (len(small), sum(map(len, events.values())))
    off = api.request("GET", "/api/callbacks", params={"body": "false"}).json()
    assert off == summaries
    wrong = api.request("GET", "/api/callbacks", params={"body": "yes"})
    assert wrong.status_code == 400 and "'body'" in wrong.json()["error"]


def test_bad_query_parameter_is_named_in_a_400(api: OpenAPIChecked) -> None:
    response = api.request("GET", "/api/events", params={"message_id": "abc"})
    assert response.status_code == 400
    assert "message_id" in response.json()["error"]


def test_unknown_path_and_method_get_json_errors(api: OpenAPIChecked) -> None:
    assert api.http.get("/nothing-here").json()["error"] == r.NOT_FOUND
    not_allowed = api.http.get("/callback")
    assert (not_allowed.status_code, not_allowed.json()["error"]) == (405, r.METHOD_NOT_ALLOWED)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mixed_events(), max_size=30))
def test_no_batch_ever_gets_a_5xx_and_the_invariant_holds(
    api: OpenAPIChecked, events: list[tuple[Any, bool]]
) -> None:
    response = post(api, envelope([event for event, _ in events]))
    body = response.json()
    assert response.status_code == 200
    assert body["TOTAL_EVENTS"] == body["PROCESSED_EVENTS"] + len(body["UNPROCESSED_EVENTS"])
    assert body["PROCESSED_EVENTS"] == sum(ok for _, ok in events)


def test_concurrent_posts_are_all_committed(api: OpenAPIChecked) -> None:
    """waitress serves several threads; SQLite writes are serialised, none is lost."""
    body = sample_bytes("callback-request.json")
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda _: httpx.post(f"{api.http.base_url}/callback", content=body), range(40))
        )
    assert {s.status_code for s in statuses} == {200}
    assert stored(api)["callbacks"] == 40


def test_callback_for_a_meta_never_sent_is_flagged(receiver: RunningReceiver) -> None:
    sent = sample("callback-request.json")["events"]["failed"][0]
    receiver.store.record_sent([SentMessage(sent["email"], sent["meta"], -17005907, "l", 0, 1.0)])
    client = OpenAPIChecked(receiver.url)
    post(client, sample_bytes("callback-request.json"))
    flagged = client.request("GET", "/api/unattributed").json()["events"]
    assert [event["position"] for event in flagged] == [1, 2, 3]
    client.close()


def test_sent_and_unattributed_come_a_bounded_page_at_a_time(receiver: RunningReceiver) -> None:
    """No read endpoint returns an unbounded list: /api/sent and /api/unattributed page by key,
    and following `next` yields every item exactly once, in order."""
    metas = [f"u{n}@example.com|9|1730714617|20241104|1|spring|5|" for n in range(7)]
    receiver.store.record_sent(
        [SentMessage(f"u{n}@example.com", metas[n], 5, "spring", 1, 1.0) for n in (0, 2, 4)]
    )
    failed = [{"type": "spam", "email": "u@example.com", "meta": meta} for meta in metas]
    client = OpenAPIChecked(receiver.url)
    post(client, envelope(failed))
    for path, key, size, expected in (
        ("/api/sent", "sent", 2, [metas[n] for n in (0, 2, 4)]),
        ("/api/unattributed", "events", 1, [metas[n] for n in (1, 3, 5, 6)]),
    ):
        seen: list[str] = []
        params: dict[str, Any] = {"limit": size}
        pages = 0
        while True:
            page = client.request("GET", path, params=params).json()
            assert len(page[key]) <= size
            seen += [item["meta"] for item in page[key]]
            pages += 1
            if page["next"] is None:
                break
            params = {"limit": size, "after": page["next"]}
        assert seen == expected and pages > 1
    assert client.request("GET", "/api/sent", "/api/sent?limit=0").status_code == 400
    client.close()


def test_delete_state_resets_the_receiver_between_tests(api: OpenAPIChecked) -> None:
    """Issue 15: `DELETE /api/state` empties the log and everything derived from it, on both
    stores, and the receiver goes on as new."""
    post(api, sample_bytes("callback-request.json"))
    answer = api.request("DELETE", "/api/state")
    assert answer.status_code == 200
    assert answer.json() == {"status": "reset", "counts": dict.fromkeys(stored(api), 0)}
    assert api.request("GET", "/api/events").json() == {"events": [], "next": None}
    profile = api.request("GET", "/api/profiles/{email}", "/api/profiles/user1@example.com")
    assert profile.status_code == 404
    post(api, sample_bytes("callback-request.json"))
    assert stored(api)["system_events"] == 5, "the same events count again, not as duplicates"


CROSS_SITE_RESETS = {
    "Sec-Fetch-Site cross-site": {"sec-fetch-site": "cross-site"},
    "Origin of another site": {"origin": "https://evil.example"},
    "Origin null": {"origin": "null"},
}


@pytest.mark.parametrize("case", sorted(CROSS_SITE_RESETS))
def test_a_reset_sent_by_another_sites_page_is_refused(api: OpenAPIChecked, case: str) -> None:
    post(api, sample_bytes("callback-request.json"))
    refused = api.request("DELETE", "/api/state", headers=CROSS_SITE_RESETS[case])
    assert refused.status_code == 403
    assert refused.json()["error"] == r.RESET_CROSS_SITE
    assert stored(api)["callbacks"] == 1


def test_a_reset_needs_the_token_even_where_reads_are_public(tmp_path: Path) -> None:
    with running_receiver(tmp_path / "db.sqlite3", read_token="R", public_read=True) as rx:
        client = OpenAPIChecked(rx.url)
        assert client.request("GET", "/api/events").status_code == 200, "reads are public"
        assert client.request("DELETE", "/api/state").status_code == 401
        wrong = client.request("DELETE", "/api/state", headers={"authorization": "Bearer r"})
        assert wrong.status_code == 401
        right = client.request("DELETE", "/api/state", headers={"authorization": "Bearer R"})
        assert right.status_code == 200
        client.close()
    with running_receiver(tmp_path / "open.sqlite3", public_read=True) as rx:
        client = OpenAPIChecked(rx.url)
        refused = client.request("DELETE", "/api/state")
        assert (refused.status_code, refused.json()["error"]) == (403, r.RESET_PUBLIC)
        client.close()


def test_callback_detail_feed_and_timeline_answer_as_documented(api: OpenAPIChecked) -> None:
    post(api, sample_bytes("callback-request.json"))
    detail = api.request("GET", "/api/callbacks/{callback_id}", "/api/callbacks/1").json()
    assert [e["type"] for e in detail["events"]] == [
        "unsubscribed",
        "hard_bounce",
        "soft_bounce",
        "spam",
    ]
    assert not any(e["attributed"] for e in detail["events"]), "the sender sent none of them"
    missing = api.request("GET", "/api/callbacks/{callback_id}", "/api/callbacks/2")
    assert missing.status_code == 404
    bad = api.request("GET", "/api/callbacks/{callback_id}", "/api/callbacks/0")
    assert bad.status_code == 400
    post(api, envelope([{"type": "spam", "email": "x@example.com", "meta": "nope"}]))
    rows = api.request("GET", "/api/feed").json()["callbacks"]
    assert [(c["total"], c["processed"], c["unprocessed"], c["error"]) for c in rows] == [
        (4, 4, 0, None),
        (1, 0, 1, "1 event(s) failed to process"),
    ]
    timeline = api.request("GET", "/api/timeline", params={"label": "wzrk_default"}).json()
    assert sum(sum(b["counts"].values()) for b in timeline["buckets"]) == 4
    assert api.request("GET", "/api/timeline").status_code == 400
    events = api.request("GET", "/api/events", params={"name": "Notification Failed"}).json()
    assert {e["type"] for e in events["events"]} == {"hard_bounce", "soft_bounce"}
