"""Issue 15, the fake ESP's HTTP side through its real waitress server: the read routes as they
were, the runtime controls' JSON, the token and the cross-site refusal, the bounded stream."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from reference_impl.receiver.server import RunningReceiver
from simulator.esp.api import BAD_LIMIT, NOT_FOUND, TABLE_ROUTES, listing
from simulator.esp.preflight import ESPConfigError
from simulator.esp.server import FakeESP
from simulator.esp.spool import SpoolReader, connect
from simulator.esp.web.app import (
    CONTROLS_NEED_TOKEN,
    CROSS_SITE,
    TOKEN_COOKIE,
    TOKEN_REQUIRED,
    WebConfig,
    create_app,
)
from simulator.esp.web.control import NOT_JSON
from simulator.esp.web.server import WebServer
from tests.simulator.esp.conftest import send_campaign

TOKEN = "s3cret-read-token"


def test_the_read_routes_answer_what_the_listing_prints(esp: FakeESP) -> None:
    """The move to Flask changed no route and no JSON: each is `listing`'s document."""
    send_campaign(esp.port, ["bounce@example.com", "success@example.com"])
    esp.wait_delivered(messages=2)
    reader = SpoolReader(esp.spool_path)
    try:
        for route in (*TABLE_ROUTES, "/stats"):
            response = httpx.get(esp.api_url + route, params={"limit": 5})
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert response.json() == json.loads(json.dumps(listing(reader, route, 5))), route
    finally:
        reader.close()
    assert httpx.get(esp.api_url + "/messages", params={"limit": "x"}).json() == {
        "error": BAD_LIMIT
    }
    missing = httpx.get(esp.api_url + "/nope")
    assert missing.status_code == 404 and missing.json() == {"error": NOT_FOUND}


def test_a_control_change_is_answered_with_the_new_controls_and_what_changed(
    esp: FakeESP,
) -> None:
    response = httpx.put(esp.api_url + "/api/chaos", json={"faults": {"data": {"rate": 0.5}}})
    assert response.status_code == 200
    assert response.json()["changes"] == ["faults.data.rate: 0.0 -> 0.5"]
    assert httpx.get(esp.api_url + "/api/chaos").json()["faults"]["data"]["rate"] == 0.5
    (logged,) = httpx.get(esp.api_url + "/api/changes").json()["changes"]
    assert logged["changes"] == ["faults.data.rate: 0.0 -> 0.5"] and "127.0.0.1" in logged["source"]
    restored = httpx.delete(esp.api_url + "/api/chaos").json()["controls"]
    assert restored["faults"]["data"]["rate"] == 0.0


def test_a_wrong_change_is_a_400_naming_each_key_and_changes_nothing(esp: FakeESP) -> None:
    before = httpx.get(esp.api_url + "/api/chaos").json()
    response = httpx.put(
        esp.api_url + "/api/chaos",
        json={"faults": {"rcpt": {"rate": 3}}, "outcome": {"spam": 1}},
    )
    assert response.status_code == 400
    problems = {p["key"]: p["reason"] for p in response.json()["problems"]}
    assert "outside [0.0, 1.0]" in problems["faults.rcpt.rate"]
    assert "did you mean 'outcomes'?" in problems["outcome"]
    assert httpx.get(esp.api_url + "/api/chaos").json() == before
    not_json = httpx.put(esp.api_url + "/api/chaos", content=b"rate=1")
    assert not_json.status_code == 400 and not_json.json() == {"error": NOT_JSON}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_control_and_reset_refuse_a_request_from_another_site(
    esp: FakeESP, headers: dict[str, str]
) -> None:
    for method, path in (("PUT", "/api/chaos"), ("DELETE", "/api/chaos"), ("DELETE", "/api/state")):
        response = httpx.request(
            method, esp.api_url + path, json={"delivery": {"paused": True}}, headers=headers
        )
        assert response.status_code == 403 and response.json() == {"error": CROSS_SITE}, path
    assert httpx.get(esp.api_url + "/api/chaos").json()["delivery"]["paused"] is False
    same_site = {"Origin": esp.api_url, "Sec-Fetch-Site": "same-origin"}
    ok = httpx.put(esp.api_url + "/api/chaos", json={"delivery": {}}, headers=same_site)
    assert ok.status_code == 200


def test_with_a_read_token_everything_asks_for_it(receiver: RunningReceiver) -> None:
    with FakeESP("smoke", receiver.callback_url, tls="none", api_port=0, read_token=TOKEN) as esp:
        url = esp.api_url
        for path in ("/", "/messages", "/stats", "/api/chaos", "/api/stream", "/dashboard/state"):
            refused = httpx.get(url + path)
            assert refused.status_code == 401 and refused.json() == {"error": TOKEN_REQUIRED}
        assert httpx.put(url + "/api/chaos", json={}).status_code == 401
        assert httpx.delete(url + "/api/state").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.get(url + "/stats", headers=wrong).status_code == 401
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(url + "/stats", headers=right).status_code == 200
        assert httpx.put(url + "/api/chaos", json={}, headers=right).status_code == 200
        assert httpx.get(url + "/static/dashboard.js").status_code == 200, "no secret in it"
        assert httpx.get(url + "/", params={"token": "nope"}).status_code == 401


def test_the_dashboard_trades_the_token_in_its_address_for_a_same_site_cookie(
    receiver: RunningReceiver,
) -> None:
    with (
        FakeESP("smoke", receiver.callback_url, tls="none", api_port=0, read_token=TOKEN) as esp,
        httpx.Client(base_url=esp.api_url) as client,
    ):
        opened = client.get("/", params={"token": TOKEN})
        assert opened.status_code == 302 and opened.headers["location"] == "/"
        cookie = opened.headers["set-cookie"]
        assert f"{TOKEN_COOKIE}={TOKEN}" in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert client.get("/").status_code == 200
        assert client.get("/dashboard/state").status_code == 200


def test_exposed_without_a_token_refuses_to_start_unless_public_read(
    receiver: RunningReceiver,
) -> None:
    with pytest.raises(ESPConfigError, match="--read-token"):
        FakeESP("smoke", receiver.callback_url, tls="none", api_port=0, api_host="0.0.0.0")


def test_public_read_serves_reads_but_keeps_controls_and_reset_off(
    receiver: RunningReceiver,
) -> None:
    with FakeESP(
        "smoke",
        receiver.callback_url,
        tls="none",
        api_port=0,
        api_host="0.0.0.0",
        public_read=True,
    ) as esp:
        url = f"http://127.0.0.1:{esp.api_url.rsplit(':', 1)[1]}"
        assert httpx.get(url + "/stats").status_code == 200
        assert httpx.get(url + "/").status_code == 200
        for method, path in (("PUT", "/api/chaos"), ("DELETE", "/api/state")):
            response = httpx.request(method, url + path, json={})
            assert response.status_code == 403
            assert response.json() == {"error": CONTROLS_NEED_TOKEN}


def test_a_stream_sends_the_state_then_ends_by_itself(tmp_path: Path) -> None:
    """Bounded per-stream lifetime: a forgotten tab holds a server thread for a while only."""
    spool = tmp_path / "spool.sqlite3"
    connect(spool).close()
    config = WebConfig(spool, stream_seconds=0.5, stream_poll_seconds=0.05)
    server = WebServer(create_app(config)).start()
    try:
        with httpx.stream("GET", server.url + "/api/stream", timeout=10) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = list(response.iter_lines())  # returns only because the stream ends
    finally:
        server.stop()
    assert lines[0] == "retry: 1000"
    assert "event: state" in lines
    assert any(line.startswith("data: ") and "Spool" in line for line in lines)


def test_a_spool_file_alone_is_served_without_controls(tmp_path: Path) -> None:
    from simulator.esp.api import SpoolAPI

    spool = tmp_path / "spool.sqlite3"
    connect(spool).close()
    with SpoolAPI(spool) as api:
        assert httpx.get(api.url + "/").status_code == 200
        assert httpx.get(api.url + "/api/chaos").status_code == 404
        assert httpx.delete(api.url + "/api/state").status_code == 404
