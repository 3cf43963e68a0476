"""`bounceback load`: a Locust master and two workers, as separate processes, against the real
receiver for a few seconds; then `load verify` proves nothing acknowledged was lost."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
# A checkout's venv made before locust joined the dependencies: `make install` brings it. (Only
# looked up, not imported: importing Locust patches this whole process with gevent.)
if importlib.util.find_spec("locust") is None:
    pytest.skip("locust is not installed: run `make install`", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bounceback(*args: str) -> list[str]:
    return [sys.executable, "-m", "reference_impl.cli", *args]


def test_distributed_load_then_verify(tmp_path: Path, receiver) -> None:
    url = f"{receiver.url}/callback"
    ledger = tmp_path / "ledger"
    master_port = str(_free_port())
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    master = subprocess.Popen(
        _bounceback(
            "load",
            "callbacks",
            url,
            "--ledger",
            str(ledger),
            "--batch-size",
            "50",
            "--headless",
            "--master",
            "--expect-workers",
            "2",
            "--master-bind-port",
            master_port,
            "--users",
            "4",
            "--spawn-rate",
            "4",
            "--run-time",
            # Long enough that both workers, slow to import Locust on a loaded machine, have
            # their users running before the master stops them.
            "10s",
        ),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    workers = [
        subprocess.Popen(
            _bounceback(
                "load",
                "callbacks",
                url,
                "--ledger",
                str(ledger),
                "--batch-size",
                "50",
                "--worker",
                "--master-port",
                master_port,
            ),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        output, _ = master.communicate(timeout=120)
    finally:
        for worker in workers:
            worker.wait(timeout=60)
    assert master.returncode == 0, output[-3000:]
    assert len(list(ledger.glob("*.jsonl"))) == 2, "each worker writes its own ledger"
    verified = subprocess.run(
        _bounceback("load", "verify", receiver.url, "--ledger", str(ledger)),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "missing: 0; raised more than once: 0" in verified.stdout
    acknowledged = int(verified.stdout.split("acknowledged: ")[1].split()[0])
    assert acknowledged > 0
