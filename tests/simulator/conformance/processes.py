"""Running bounceback's commands and the independent receivers as separate processes, as users do.

The commands run in a fresh working directory with the repository on `PYTHONPATH` (a checkout
stands in for the installed wheel); the independent receivers (tests/independent/) run under
their own runtime on a free loopback port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
INDEPENDENT = REPO / "tests" / "independent"
CLI = [sys.executable, "-c", "from reference_impl.cli import main; main()"]


def run(
    args: list[str], cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `args` in `cwd` with the checkout importable and no Hypothesis profile preset."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "0", **(env or {})}
    environment.pop("HYPOTHESIS_PROFILE", None)
    return subprocess.run(
        args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )


@contextmanager
def independent_receiver(runtime: str = "python", bug: str | None = None) -> Iterator[str]:
    """Start tests/independent's receiver for `runtime` (python or node); yields its base URL."""
    if runtime == "node":
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not on PATH: tests/independent/receiver.js needs Node 20 to run")
        command = [node, str(INDEPENDENT / "receiver.js")]
    else:
        command = [sys.executable, str(INDEPENDENT / "stdlib_receiver.py")]
    command += ["--port", "0", *(["--bug", bug] if bug else [])]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("LISTENING "), f"{command} printed {line!r}"
        yield line.removeprefix("LISTENING ")
    finally:
        process.terminate()
        process.wait(timeout=10)
