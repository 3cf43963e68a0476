"""`bounceback esp`: help, clear errors, and listing what was received and sent back."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from reference_impl.cli import main
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


def test_list_without_a_spool_says_how_to_fix_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["esp", "--list", "--spool", str(tmp_path / "none.db")])
    assert result.exit_code == 1 and "start the ESP first" in result.output
