"""The dashboard through a real waitress server, on both stores: what its pages show is what
the read API answers, its live feed streams the log, and it asks for the read token when set."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from reference_impl.receiver.access import COOKIE_NAME
from reference_impl.receiver.server import RunningReceiver, running_receiver
from tests.samples import sample_bytes


def parse_stream(text: str) -> list[tuple[str, Any, str | None]]:
    seen = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            seen.append((fields["event"], json.loads(fields["data"]), fields.get("id")))
    return seen


def post_sample(receiver: RunningReceiver) -> None:
    body = sample_bytes("callback-request.json")
    assert httpx.post(receiver.callback_url, content=body).status_code == 200


def test_pages_carry_a_strict_policy_and_no_inline_script(receiver: RunningReceiver) -> None:
    post_sample(receiver)
    for path in ("/", "/dashboard/callbacks/1", "/dashboard/reports?label=wzrk_default"):
        page = httpx.get(receiver.url + path)
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert re.findall(r"<script(?![^>]*\bsrc=)", page.text) == [], "no inline script"


def test_errors_of_json_routes_keep_their_shape_and_pages_answer_pages(
    receiver: RunningReceiver,
) -> None:
    api = httpx.get(f"{receiver.url}/api/callbacks/99")
    assert api.headers["content-type"] == "application/json"
    assert api.json()["error"] == "no callback 99"
    page = httpx.get(f"{receiver.url}/dashboard/callbacks/99")
    assert (page.status_code, page.headers["content-type"].split(";")[0]) == (404, "text/html")
    bad = httpx.get(f"{receiver.url}/dashboard/callbacks", params={"after": "x"})
    assert bad.status_code == 400 and "after" in bad.text


def test_a_callback_page_shows_what_the_api_answers_for_it(receiver: RunningReceiver) -> None:
    """Everything the detail page shows comes from `/api/callbacks/<id>`: each event's type,
    its decoded meta fields and the system events it raised; unattributed ones are marked."""
    post_sample(receiver)
    detail = httpx.get(f"{receiver.url}/api/callbacks/1").json()
    page = httpx.get(f"{receiver.url}/dashboard/callbacks/1").text
    for event in detail["events"]:
        assert f">{event['type']}</span>" in page
        assert f"<dd>{event['fields']['account_id']}</dd>" in page
        for raised in event["system_events"]:
            assert f"<td>{raised['id']}</td>" in page
    assert page.count('class="badge warn"') == len(detail["events"]), "none was ever sent"
    assert "Exception occurred" not in page
    assert "UNPROCESSED_EVENTS" in page, "the stored reply is shown"


def test_profile_events_and_report_pages_show_what_the_api_answers(
    receiver: RunningReceiver,
) -> None:
    post_sample(receiver)
    base = receiver.url
    profile = httpx.get(f"{base}/api/profiles/user1@example.com").json()
    page = httpx.get(f"{base}/dashboard/profiles", params={"email": "User1@example.com"}).text
    assert "unsubscribed</span>" in page
    assert f'href="/dashboard/callbacks/{profile["history"][0]["callback_id"]}"' in page
    failed = httpx.get(f"{base}/api/events", params={"name": "Notification Failed"}).json()
    page = httpx.get(f"{base}/dashboard/events", params={"name": "Notification Failed"}).text
    assert page.count("<td>Notification Failed</td>") == len(failed["events"]) == 2
    report = httpx.get(f"{base}/api/labels/wzrk_default").json()
    page = httpx.get(f"{base}/dashboard/reports", params={"label": "wzrk_default"}).text
    for kind in ("hard_bounce", "soft_bounce", "spam", "unsubscribed", "delivered"):
        assert f": {report['counts'][kind]}</title>" in page
    assert 'id="timeline"' in page
    assert ", hard_bounce 1" in page


def test_the_live_stream_sends_what_the_feed_api_answers_and_ends(tmp_path: Path) -> None:
    """A stream sends every row of `/api/feed` past its cursor, then ends after its bounded
    lifetime (the browser reconnects); a reconnect resumes after `Last-Event-ID`."""
    with running_receiver(tmp_path / "db.sqlite3", stream_seconds=1.0) as receiver:
        post_sample(receiver)
        post_sample(receiver)
        feed = httpx.get(f"{receiver.url}/api/feed").json()["callbacks"]
        streamed = httpx.get(f"{receiver.url}/dashboard/stream", params={"after": 0}, timeout=30)
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = parse_stream(streamed.text)
        assert [data for kind, data, _ in events if kind == "callback"] == feed
        resumed = httpx.get(
            f"{receiver.url}/dashboard/stream",
            params={"after": 0},
            headers={"Last-Event-ID": "1"},
            timeout=30,
        )
        assert [d["id"] for k, d, _ in parse_stream(resumed.text) if k == "callback"] == [2]


def test_streams_past_half_the_threads_answer_and_end_so_callbacks_keep_theirs(
    tmp_path: Path,
) -> None:
    """With 2 threads one stream may be held; a second one answers at once and ends, and a
    callback is still served while the first is open."""
    with running_receiver(tmp_path / "db.sqlite3", threads=2, stream_seconds=20.0) as receiver:
        url = f"{receiver.url}/dashboard/stream"
        with httpx.Client(timeout=30) as held, held.stream("GET", url) as first:
            lines = first.iter_lines()
            assert next(lines).startswith("retry:")
            second = httpx.get(url, timeout=30)
            assert [k for k, _, _ in parse_stream(second.text)] == ["counts"]
            post_sample(receiver)
            for line in lines:
                if line.startswith("event: callback"):
                    break


def test_the_dashboard_asks_for_the_read_token_and_keeps_it_in_a_strict_cookie(
    tmp_path: Path,
) -> None:
    with running_receiver(tmp_path / "db.sqlite3", read_token="R") as receiver:
        base = receiver.url
        page = httpx.get(f"{base}/")
        assert page.status_code == 401 and 'name="token"' in page.text
        assert httpx.get(f"{base}/dashboard/stream").status_code == 401
        assert httpx.get(f"{base}/?token=wrong").status_code == 401
        signed = httpx.get(f"{base}/dashboard/profiles", params={"email": "a@b.c", "token": "R"})
        assert signed.status_code == 303
        assert signed.headers["location"] == "/dashboard/profiles?email=a%40b.c"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert f"{COOKIE_NAME}=R;" not in cookie, "the cookie is not the token"
        with httpx.Client(base_url=base, cookies=signed.cookies) as browser:
            assert browser.get("/").status_code == 200
            assert browser.get("/api/events").status_code == 200, "the page's own API reads"
            assert browser.delete("/api/state").status_code == 200
        assert httpx.get(f"{base}/api/events").status_code == 401
        bearer = httpx.get(f"{base}/", headers={"authorization": "Bearer R"})
        assert bearer.status_code == 200


@pytest.mark.parametrize("public", [True, False])
def test_public_read_opens_the_pages_but_never_the_reset(tmp_path: Path, public: bool) -> None:
    with running_receiver(tmp_path / "db.sqlite3", read_token="R", public_read=public) as rx:
        assert httpx.get(f"{rx.url}/").status_code == (200 if public else 401)
        assert httpx.delete(f"{rx.url}/api/state").status_code == 401
