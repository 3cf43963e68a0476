"""Shared plumbing for the benches: servers in processes of their own, their CPU and memory, stats.

Every bench compares against a baseline in the same run, round by round (A B A B ...), because the
machine is shared and its speed drifts; these helpers read each server's own CPU time from /proc so
a figure counts the server's work, not the time it waited for a core.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"listening on (?:http://)?127\.0\.0\.1:(\d+)")


def start(
    command: Sequence[str], pattern: re.Pattern[str] = LISTENING
) -> tuple[subprocess.Popen[str], int]:
    """Start a server process and wait for the line that names its port."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        found = pattern.search(line)
        if found:
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, int(found[1])
    raise SystemExit(f"server did not start: {' '.join(command)}\n{''.join(seen[-20:])}")


def stop(*processes: subprocess.Popen[str]) -> None:
    for process in processes:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of a process in MB, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = dict(re.findall(r"(VmRSS|VmHWM):\s+(\d+) kB", status))
    return int(values.get("VmRSS", 0)) / 1024, int(values.get("VmHWM", 0)) / 1024


def spread(values: Sequence[float], digits: int = 2) -> str:
    """`min / median / max` of a figure, the form every bench reports."""
    return (
        f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} /"
        f" {max(values):.{digits}f}"
    )


def python() -> str:
    return sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_on_port(
    command: Callable[[int], Sequence[str]],
    timeout: float = 20.0,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[str], int]:
    """Start a server that prints no port: give it a free one and wait until it accepts.

    `env` adds to this process's environment (maildev takes its mail folder from TMPDIR).
    """
    port = free_port()
    process = subprocess.Popen(
        list(command(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"server did not start on port {port}: {' '.join(command(port))}")
