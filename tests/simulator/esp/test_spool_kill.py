"""The spool survives SIGKILL: restarted on the same file, the ESP delivers everything pending."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reference_impl.receiver.server import running_receiver
from simulator.esp.spool import SpoolReader
from tests.simulator.esp.conftest import assert_each_event_once, expected_outcomes, send_campaign

pytestmark = pytest.mark.e2e
LISTENING = re.compile(r"SMTP listening on 127\.0\.0\.1:(\d+)")


def start_esp(spool: Path, callback_url: str) -> tuple[subprocess.Popen[str], int]:
    command = [
        sys.executable,
        "-c",
        "from simulator.esp.cli import esp; esp()",
        "--smtp-port=0",
        f"--callback-url={callback_url}",
        "--scenario=smoke",
        "--seed=4",
        f"--spool={spool}",
        "--tls=none",
        "--retry-schedule=0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5",
        "--batch-delay=0",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        found = LISTENING.search(line)
        if found:
            return process, int(found[1])
    process.kill()
    raise AssertionError("the ESP did not start:\n" + "".join(lines))


def test_pending_callbacks_are_delivered_after_sigkill_and_restart(tmp_path: Path) -> None:
    spool = tmp_path / "spool.sqlite3"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/callback"
    recipients = [f"killed{i}@example.com" for i in range(30)]

    first, smtp_port = start_esp(spool, url)
    try:
        metas = send_campaign(smtp_port, recipients)
        reader = SpoolReader(spool)
        deadline = time.monotonic() + 10
        while reader.stats().get("attempts", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reader.stats()["messages"] == len(recipients)
        assert reader.outstanding() > 0, "the receiver is down, so callbacks must be pending"
        reader.close()
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        assert first.stdout is not None
        first.stdout.close()

    with running_receiver(tmp_path / "receiver.sqlite3", port=port) as rx:
        second, _ = start_esp(spool, url)
        try:
            reader = SpoolReader(spool)
            deadline = time.monotonic() + 20
            while reader.outstanding() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert reader.outstanding() == 0
            reader.close()
            assert_each_event_once(rx, expected_outcomes("smoke", 4, metas))
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(10)
            assert second.stdout is not None
            second.stdout.close()
