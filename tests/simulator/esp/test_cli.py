"""`bounceback esp`: help, clear errors, and listing what was received and sent back."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from reference_impl.cli import main
from reference_impl.errors import EXIT_OPERATOR
from simulator.esp.api import SpoolAPI
from simulator.esp.server import FakeESP
from tests.simulator.esp.conftest import send_campaign


def test_esp_help_lists_the_issue_options() -> None:
    result = CliRunner().invoke(main, ["esp", "--help"])
    assert result.exit_code == 0
    for option in (
        "--smtp-host",
        "--smtp-port",
        "--callback-url",
        "--scenario",
        "--seed",
        "--spool",
    ):
        assert option in result.output


def test_a_bad_scenario_is_reported_with_file_key_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[outcomes]\ndelivered = 0.4\n")
    result = CliRunner().invoke(
        main, ["esp", "--scenario", str(bad), "--callback-url", "http://127.0.0.1:9/c"]
    )
    assert result.exit_code != 0
    assert (
        "bad.toml" in result.output
        and "'outcomes'" in result.output
        and "sum to 1" in result.output
    )


def test_running_without_callback_url_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["esp", "--scenario", "smoke"])
    assert result.exit_code == 2 and "--callback-url" in result.output


def test_list_and_get_endpoints_show_received_mail_and_sent_callbacks(
    receiver, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.sqlite3"
    with FakeESP("ses-simulator", receiver.callback_url, spool=spool, batch_delay=0.0) as esp:
        send_campaign(esp.port, ["bounce@example.com", "success@example.com"])
        esp.wait_delivered(messages=2)
    result = CliRunner().invoke(main, ["esp", "--list", "--spool", str(spool)])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert {m["recipients"][0] for m in listing["messages"]} == {
        "bounce@example.com",
        "success@example.com",
    }
    assert listing["attempts"][0]["status"] == 200
    with SpoolAPI(spool) as api:
        messages = httpx.get(api.url + "/messages").json()["messages"]
        batches = httpx.get(api.url + "/batches", params={"limit": 1}).json()["batches"]
        stats = httpx.get(api.url + "/stats").json()
        assert httpx.get(api.url + "/nope").status_code == 404
        assert httpx.get(api.url + "/messages", params={"limit": "x"}).status_code == 400
    assert len(messages) == 2 and len(batches) == 1 and stats["batches_delivered"] == 1


def test_list_without_a_spool_says_how_to_fix_it_exit_2(tmp_path: Path) -> None:
    result = run_esp("--list", "--spool", str(tmp_path / "none.db"), cwd=tmp_path)
    assert "start the ESP first" in assert_one_line_operator_error(result)


def run_esp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real `bounceback esp`, as an operator runs it."""
    command = [sys.executable, "-m", "reference_impl.cli", "esp", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=60)


def assert_one_line_operator_error(result: subprocess.CompletedProcess[str]) -> str:
    """Operator mistakes (issue 10): one line on stderr naming the problem, no traceback, exit 2."""
    assert result.returncode == EXIT_OPERATOR, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("bounceback esp: error: ")
    return line


def start_args(tmp_path: Path, **overrides: str) -> list[str]:
    """Arguments that would start the ESP, with one of them made wrong."""
    options = {
        "--scenario": "smoke",
        "--callback-url": "http://127.0.0.1:9/callback",
        "--spool": str(tmp_path / "spool.sqlite3"),
        "--smtp-port": "0",
    } | overrides
    return [word for pair in options.items() for word in pair]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize("option", ["--smtp-port", "--api-port"])
def test_a_taken_port_is_one_line_naming_the_option_exit_2(
    tmp_path: Path, taken_port: int, option: str
) -> None:
    result = run_esp(*start_args(tmp_path, **{option: str(taken_port)}), cwd=tmp_path)
    line = assert_one_line_operator_error(result)
    assert f"{option} 127.0.0.1:{taken_port} is already in use" in line
    assert f"choose another {option}" in line
    assert not (tmp_path / "spool.sqlite3").exists(), "nothing may start before the checks"


def test_a_spool_in_a_missing_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    missing = "/nonexistent/dir/x.sqlite3"
    line = assert_one_line_operator_error(
        run_esp(*start_args(tmp_path, **{"--spool": missing}), cwd=tmp_path)
    )
    assert f"--spool {missing}: the folder /nonexistent/dir does not exist" in line


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("127.0.0.1:8080/callback", "has no scheme; give a full URL such as http://127.0.0.1:8080"),
        ("ftp://receiver.example/callback", "scheme 'ftp' is not http or https"),
        ("http:///callback", "has no host"),
    ],
)
def test_a_callback_url_that_cannot_be_posted_to_is_refused_at_start(
    tmp_path: Path, url: str, reason: str
) -> None:
    result = run_esp(*start_args(tmp_path, **{"--callback-url": url}), cwd=tmp_path)
    line = assert_one_line_operator_error(result)
    assert f"--callback-url {url!r}: {reason}" in line


def test_an_unknown_scenario_lists_the_shipped_ones_and_suggests_the_closest_exit_2(
    tmp_path: Path,
) -> None:
    result = run_esp(*start_args(tmp_path, **{"--scenario": "smok"}), cwd=tmp_path)
    line = assert_one_line_operator_error(result)
    assert "scenario smok: is neither a file nor the name of a shipped scenario" in line
    assert "did you mean 'smoke'?" in line
    assert "shipped: batch-limit, bulk-sender-rules, mixed," in line


def test_an_exposed_api_without_a_token_is_one_line_exit_2(tmp_path: Path) -> None:
    """Issue 15: beyond loopback the dashboard and API need --read-token, or --public-read."""
    args = start_args(tmp_path, **{"--api-port": "0", "--api-host": "0.0.0.0"})
    line = assert_one_line_operator_error(run_esp(*args, cwd=tmp_path))
    assert "--api-host 0.0.0.0 is reachable from other machines" in line
    assert "--read-token" in line and "--public-read" in line
    assert not (tmp_path / "spool.sqlite3").exists(), "nothing may start before the checks"
