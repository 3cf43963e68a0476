"""The receiver under hostile clients, through a real `bounceback receiver` process (issue 12).

Slow clients, smuggled requests, framing errors and unguarded reads: every answer keeps the one
JSON shape, no client can hold the server, and no secret reaches the log. The guarded receiver is
served both ways `bounceback receiver` can serve: one waitress process on SQLite, and
`--workers 2` (gunicorn) on a throwaway PostgreSQL cluster.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reference_impl.protocol import replies as r
from tests.postgres import Cluster
from tests.reference_impl.receiver.test_cli import free_port
from tests.samples import sample_bytes

TOKEN = "sekr3t-t0ken-value"
SLOW_CLIENTS = 120
pytestmark = pytest.mark.e2e


@dataclass
class Receiver:
    url: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]


def start_receiver(tmp_path: Path, *args: str, db: str | None = None) -> Receiver:
    port = free_port()
    log = tmp_path / "receiver.log"
    command = [sys.executable, "-m", "reference_impl.cli", "receiver", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--db", db or str(tmp_path / "rx.sqlite3"), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return Receiver(url, port, log, process)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(log.read_text())


def stop(receiver: Receiver) -> str:
    receiver.process.terminate()
    receiver.process.wait(10)
    return receiver.log.read_text()


@pytest.fixture(scope="module", params=["waitress", "gunicorn"])
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Receiver]:
    """A receiver with a token and a 2 s request deadline, on each server the CLI can run."""
    options = ["--token", TOKEN, "--request-timeout", "2"]
    db = None
    if request.param == "gunicorn":
        cluster: Cluster = request.getfixturevalue("postgres_cluster")
        db = cluster.create_database()
        options += ["--workers", "2"]
    receiver = start_receiver(tmp_path_factory.mktemp("guarded"), *options, db=db)
    yield receiver
    stop(receiver)


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send `request` whole and read until the server closes, or for 15 s if it keeps the
    connection open (then the caller's assertions see every answer it sent meanwhile)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
        return received


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def assert_error_shape(status: int, headers: dict[str, str], body: bytes, message: str) -> None:
    assert headers["content-type"].startswith("application/json"), (status, headers, body)
    assert json.loads(body) == r.error_reply(status, message).body


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_slow_clients_cannot_lock_out_a_fresh_one_and_are_cut_at_the_request_deadline(
    guarded: Receiver,
) -> None:
    """Slowloris: many clients trickling a header each hold no thread and no slot for ever."""
    slow = []
    try:
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", guarded.port), timeout=15)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            slow.append(sock)
        for _ in range(3):  # trickle, as a slowloris client does
            for sock in slow:
                sock.sendall(b"X-a: b\r\n")
            fresh = httpx.get(f"{guarded.url}/healthz", timeout=10)
            assert fresh.status_code == 200
            time.sleep(0.5)
        # Past the 2 s request deadline each slow connection is closed by the server.
        for sock in slow:
            assert sock.recv(1024) == b""
    finally:
        for sock in slow:
            sock.close()


def test_content_length_with_transfer_encoding_is_a_json_400_that_closes_the_connection(
    guarded: Receiver,
) -> None:
    """RFC 9112 section 6.1: such a request is an error and the connection is closed, so the
    second callback hidden in its body is never processed nor stored."""
    smuggled_body = sample_bytes("callback-request.json")
    smuggled = (
        f"POST /callback/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(smuggled_body)}\r\n\r\n"
    ).encode() + smuggled_body
    chunked = b"0\r\n\r\n" + smuggled
    request = (
        f"POST /callback/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(chunked)}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode() + chunked
    raw = raw_exchange(guarded.port, request)
    assert raw.count(b"HTTP/1.1 ") == 1, raw  # one answer, then the server closed
    status, headers, body = split_response(raw)
    assert status == 400
    assert_error_shape(status, headers, body, r.AMBIGUOUS_LENGTH)
    assert headers["connection"] == "close"
    logged = httpx.get(f"{guarded.url}/api/callbacks", headers=bearer()).json()
    assert logged["callbacks"] == []


def test_transfer_encoding_in_http_1_0_is_refused_too(guarded: Receiver) -> None:
    body = b"{}"
    request = (
        f"POST /callback/{TOKEN} HTTP/1.0\r\nContent-Length: {len(body)}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode() + body
    status, headers, answer = split_response(raw_exchange(guarded.port, request))
    assert_error_shape(status, headers, answer, r.AMBIGUOUS_LENGTH)


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (b"GARBAGE\r\n\r\n", 400, r.MALFORMED_REQUEST),
        (b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400, None),
        (b"POST /callback HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413, None),
        # Exactly waitress's default header limit, so the server has read it all when it answers.
        (b"GET / HTTP/1.1\r\nX-Big: ".ljust(262_144, b"a"), 431, None),
        (b"POST /callback HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, None),
    ],
    ids=["bad-request-line", "bad-content-length", "413", "431", "501"],
)
def test_the_servers_own_refusals_have_the_json_shape(
    guarded: Receiver, request_bytes: bytes, status: int, message: str | None
) -> None:
    """docs/receiver.md: every answer is JSON of one shape, waitress's framing errors included."""
    got, headers, body = split_response(raw_exchange(guarded.port, request_bytes))
    assert got == status
    expected = {
        400: r.MALFORMED_REQUEST,
        413: r.BODY_TOO_LARGE,
        431: r.HEADERS_TOO_LARGE,
        501: r.NOT_IMPLEMENTED,
    }
    assert_error_shape(got, headers, body, message or expected[status])


def test_options_and_405_answer_json_with_allow(guarded: Receiver) -> None:
    options = httpx.options(f"{guarded.url}/callback/{TOKEN}")
    assert options.status_code == 200
    assert options.headers["content-type"] == "application/json"
    assert options.json() == r.batch_reply(0, []).body
    assert set(options.headers["allow"].split(", ")) == {"OPTIONS", "POST"}
    wrong = httpx.get(f"{guarded.url}/callback/{TOKEN}")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/json"
    assert set(wrong.headers["allow"].split(", ")) == {"OPTIONS", "POST"}
    assert wrong.json() == r.error_reply(405, r.METHOD_NOT_ALLOWED).body


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/events?message_id=9223372036854775808", "message_id"),
        ("/api/events?message_id=-9223372036854775809", "message_id"),
        ("/api/events?message_id=%D9%A1", "message_id"),
        ("/api/events?limit=0", "limit"),
        ("/api/events?limit=1001", "limit"),
        ("/api/events?after=nonsense", "after"),
        ("/api/callbacks?after=99999999999999999999999", "after"),
        ("/api/callbacks?after=-1", "after"),
        ("/api/campaigns/99999999999999999999999", "message_id"),
    ],
)
def test_every_integer_in_a_path_or_query_is_range_checked(
    guarded: Receiver, path: str, name: str
) -> None:
    """A number past 64 bits was a 500; it is a 400 naming the parameter."""
    response = httpx.get(guarded.url + path, headers=bearer())
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert repr(name) in response.json()["error"]


@pytest.mark.parametrize("path", ["/api/events", "/api/callbacks", "/api/sent"])
@pytest.mark.parametrize("auth", [None, "Bearer wrong", f"Basic {TOKEN}"])
def test_the_read_api_asks_for_the_token_when_one_is_set(
    guarded: Receiver, path: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    response = httpx.get(guarded.url + path, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json() == r.error_reply(401, r.READ_UNAUTHORIZED).body
    assert httpx.get(guarded.url + path, headers=bearer()).status_code == 200


def test_the_token_never_reaches_the_log(tmp_path: Path) -> None:
    """The callback URL is printed masked; requests with the token, right or wrong, log none."""
    receiver = start_receiver(tmp_path, "--token", TOKEN)
    try:
        sample = sample_bytes("callback-request.json")
        assert httpx.post(f"{receiver.url}/callback/{TOKEN}", content=sample).status_code == 200
        httpx.post(f"{receiver.url}/callback/{TOKEN}x", content=sample)
        httpx.post(f"{receiver.url}/callback/{TOKEN}", content=b"{")
        httpx.get(f"{receiver.url}/api/events", headers=bearer())
        raw_exchange(receiver.port, f"GET /callback/{TOKEN} HTTP/1.1\r\nBad\r\n\r\n".encode())
    finally:
        output = stop(receiver)
    assert "/callback/****" in output
    assert TOKEN not in output
