"""`bounceback receiver` as a user runs it: a subprocess under waitress, on a real port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from reference_impl.errors import EXIT_OPERATOR
from reference_impl.receiver.app import ReceiverConfig, create_app
from reference_impl.receiver.server import BackgroundServer
from tests.samples import sample, sample_bytes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.e2e
def test_receiver_command_shows_its_callback_url_when_asked(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "cli.sqlite3"
    command = [sys.executable, "-m", "reference_impl.cli", "receiver", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--db", str(db), "--token", "t0k", "--show-token"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if line.startswith("Callback URL:"):
                break
        url = lines[-1].split(":", 1)[1].strip()
        assert url == f"http://127.0.0.1:{port}/callback/t0k"
        response = httpx.post(url, content=sample_bytes("callback-request.json"))
        assert response.json() == sample("response-success.json")
        assert response.headers["server"] == "bounceback"
    finally:
        process.terminate()
        process.wait(10)
    assert db.exists()


def test_receiver_help_describes_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reference_impl.cli", "receiver", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in ("--host", "--port", "--db", "--token", "--max-body-bytes", "--workers"):
        assert option in result.stdout


def run_receiver(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "reference_impl.cli", "receiver", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=60)


def assert_one_line_operator_error(result: subprocess.CompletedProcess[str]) -> str:
    """Operator mistakes (issue 10): one line on stderr, no traceback, exit 2."""
    assert result.returncode == EXIT_OPERATOR, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("bounceback receiver: error: ")
    return line


def test_taken_port_is_one_line_saying_what_to_do_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_receiver("--port", str(port), cwd=tmp_path)
    line = assert_one_line_operator_error(result)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "choose another --port" in line


def test_store_in_a_missing_folder_is_one_line_saying_what_to_do_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "x.sqlite3"
    result = run_receiver("--db", str(missing), "--port", "0", cwd=tmp_path)
    line = assert_one_line_operator_error(result)
    assert f"cannot open the store {missing}" in line
    assert "folder exists and is writable" in line


def test_stopping_a_server_whose_loop_is_gone_still_closes_it(tmp_path: Path) -> None:
    """Shutdown must not raise when waitress's loop already died (its trigger closed)."""
    server = BackgroundServer(create_app(ReceiverConfig(tmp_path / "db.sqlite3"))).start()
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    server._server.trigger.close()
    server.stop(timeout=5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=2)


def test_a_host_beyond_loopback_without_a_read_token_is_one_line_exit_2(tmp_path: Path) -> None:
    """Issue 15: the dashboard and read API show recipients' addresses, so a receiver reachable
    from other machines must have a read token unless its operator says --public-read."""
    result = run_receiver("--host", "0.0.0.0", "--port", "0", cwd=tmp_path)
    line = assert_one_line_operator_error(result)
    assert "--host 0.0.0.0" in line
    assert "--read-token" in line
    assert "--public-read" in line
    assert not (tmp_path / "bounceback.sqlite3").exists(), "refused before opening the store"


@pytest.mark.e2e
@pytest.mark.parametrize("allow", [["--public-read"], ["--read-token", "R"]])
def test_a_host_beyond_loopback_starts_with_a_read_token_or_public_read(
    tmp_path: Path, allow: list[str]
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "reference_impl.cli", "receiver", "--host", "0.0.0.0"]
    process = subprocess.Popen(
        [*command, "--port", str(port), *allow],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the receiver did not start")
        assert page.status_code == (200 if allow == ["--public-read"] else 401)
    finally:
        process.terminate()
        process.wait(timeout=30)
