"""`make bench` runs every bench in bench/, as the README says (issue 13: it had run three of ten).

A bench is a script in bench/ that prints its `ratio=` line; `make -n` lists the commands without
running them, so this checks the real Makefile through make itself and runs no bench.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def bench_scripts() -> set[str]:
    return {
        path.name
        for path in (ROOT / "bench").glob("*.py")
        if "ratio=" in path.read_text(encoding="utf-8")
    }


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_bench_runs_every_bench_with_bounded_arguments() -> None:
    listed = subprocess.run(
        ["make", "-n", "bench"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    runs = {
        match[1]: match[2].strip()
        for match in re.finditer(r"python bench/(\w+\.py)([^\n]*)", listed)
    }
    assert bench_scripts() - runs.keys() == set(), "benches `make bench` does not run"
    # Bounded: each is given its sizes, not left at the full-size defaults behind the README table.
    assert [name for name, arguments in runs.items() if not arguments] == []
