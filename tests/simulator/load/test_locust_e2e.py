"""`bounceback load`: a Locust master and two workers, as separate processes, against the real
receiver for a few seconds; then `load verify` proves nothing acknowledged was lost.

The receiver is the embedded default (SQLite, one process) and the scale-out one: PostgreSQL
behind `--workers 2` (skipped, with the reason, where no PostgreSQL server is installed).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reference_impl.receiver.test_workers import receiver_process

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


@pytest.fixture(params=["sqlite", "postgresql --workers 2"])
def receiver_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The base URL of a running reference receiver, on each store and process model."""
    if request.param == "sqlite":
        yield request.getfixturevalue("receiver").url
        return
    with receiver_process(request.getfixturevalue("postgres_url"), "--workers", "2") as url:
        yield url


def test_distributed_load_then_verify(tmp_path: Path, receiver_url: str) -> None:
    """Issue 14: Locust's own distribution (a master, two workers) loads the receiver, and
    `load verify` finds every acknowledged event in its read API, duplicates raised once, on
    SQLite and on PostgreSQL with two worker processes sharing the database."""
    url = f"{receiver_url}/callback"
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
    worker_logs = [(tmp_path / f"worker{n}.log").open("w") for n in range(2)]
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
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for log in worker_logs
    ]
    try:
        output, _ = master.communicate(timeout=120)
    finally:
        for worker, log in zip(workers, worker_logs, strict=True):
            worker.wait(timeout=60)
            log.close()
    workers_said = "".join(log.read_text()[-1500:] for log in tmp_path.glob("worker*.log"))
    assert master.returncode == 0, output[-3000:] + workers_said
    assert len(list(ledger.glob("*.jsonl"))) == 2, (
        f"each worker writes its own ledger\n{output[-3000:]}{workers_said}"
    )
    verified = subprocess.run(
        _bounceback("load", "verify", receiver_url, "--ledger", str(ledger)),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "missing: 0; raised more than once: 0" in verified.stdout
    acknowledged = int(verified.stdout.split("acknowledged: ")[1].split()[0])
    assert acknowledged > 0
