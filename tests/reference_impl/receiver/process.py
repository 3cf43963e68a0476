"""A real `bounceback receiver` process on a fresh port, for the durability tests that kill it or
fill its disk: started, then waited for until `/healthz` answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import IO

import httpx

from tests.reference_impl.receiver.test_cli import free_port


def start_receiver_process(
    db: str,
    *options: str,
    stderr: int | IO[bytes] = subprocess.DEVNULL,
    start_new_session: bool = False,
    timeout: float = 60,
) -> tuple[str, subprocess.Popen[bytes]]:
    """The receiver's base URL and its process, once it answers; the caller stops it."""
    port = free_port()
    command = [sys.executable, "-m", "reference_impl.cli", "receiver", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--db", db, *options],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=start_new_session,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=2)
            return base, process
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() >= deadline:
                if process.poll() is None:
                    # A group of its own (`--workers`) is killed whole, workers included.
                    if start_new_session:
                        os.killpg(process.pid, signal.SIGKILL)
                    else:
                        process.kill()
                process.wait(10)
                raise AssertionError("the receiver did not start") from None
            time.sleep(0.1)
