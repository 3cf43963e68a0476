"""The installed tool, as a user meets it: the wheel built once per run, in a fresh venv outside
the checkout, every command run from an empty folder.

A checkout hides whatever the wheel forgets (a data file read relative to the source, a module
only importable from the repository root, a dependency only the dev extra brings). So the session
builds the wheel with `pip wheel --no-deps` from a copy of the working tree (a stale `build/` in
the checkout cannot leak into it), installs it with its dependencies from the package index as a
user would (pip's cache makes repeat runs quick), and hands tests a runner whose PATH, working
folder and environment point at that venv alone. Under pytest-xdist the workers share one build:
the first takes a lock and builds, the others wait and reuse it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 300.0
COMMAND_TIMEOUT = 120.0
# Set by the test run itself; a user's shell has none of them.
LEAKING_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", ".*_cache", "out"
)


@dataclass(frozen=True)
class Installed:
    """The venv holding only the built wheel (and its dependencies)."""

    venv: Path
    wheel: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self) -> dict[str, str]:
        """The caller's environment minus the test run's traces, with this venv first on PATH."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in LEAKING_VARIABLES and not key.startswith(("PYTEST_", "HYPOTHESIS_"))
        }
        outside = [
            entry
            for entry in env.get("PATH", "").split(os.pathsep)
            if entry and not Path(entry).resolve().is_relative_to(ROOT)
        ]
        env["PATH"] = os.pathsep.join([str(self.bin), *outside])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def run(
        self, *args: str, cwd: Path, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run a command of the venv (`bounceback`, `pytest`, `python`) in `cwd`, capturing all."""
        command = [str(self.bin / args[0]), *args[1:]]
        return subprocess.run(
            command,
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, cwd: Path) -> subprocess.Popen[str]:
        """Start a long-running command of the venv (`bounceback esp`) in `cwd`, its output
        (stdout and stderr together) as text on `stdout`, for the caller to read and stop."""
        return subprocess.Popen(
            [str(self.bin / args[0]), *args[1:]],
            cwd=cwd,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _source_copy(destination: Path) -> Path:
    """The working tree as committed or about to be (untracked files included, ignored ones not)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listing.returncode != 0:
        shutil.copytree(ROOT, destination, ignore=COPY_IGNORE)
        return destination
    for name in listing.stdout.decode().split("\0"):
        source = ROOT / name
        if name and source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _checked(command: list[str], what: str) -> None:
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({' '.join(command)}):\n{done.stdout}\n{done.stderr}")


def _build(folder: Path) -> Installed:
    source = _source_copy(folder / "source")
    dist = folder / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _checked([*pip, "wheel", "--no-deps", "--quiet", str(source), "-w", str(dist)], "pip wheel")
    (wheel,) = dist.glob("bounceback-*.whl")
    environment = folder / "venv"
    venv.create(environment, with_pip=True, clear=True)
    python = str(environment / "bin" / "python")
    _checked(
        [python, "-m", "pip", "--disable-pip-version-check", "install", "--quiet", str(wheel)],
        "pip install of the wheel",
    )
    return Installed(environment, wheel)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel of this working tree in a fresh venv, built once per test run."""
    base = tmp_path_factory.getbasetemp()
    # An xdist worker's base is a subfolder of the run's, which all workers of this run share.
    run_folder = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    shared = run_folder / "installed-wheel"
    shared.mkdir(exist_ok=True)
    record = shared / "installed.json"
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if record.exists():
            data = json.loads(record.read_text())
            return Installed(Path(data["venv"]), Path(data["wheel"]))
        result = _build(shared)
        record.write_text(json.dumps({"venv": str(result.venv), "wheel": str(result.wheel)}))
        return result


@pytest.fixture
def empty_folder(tmp_path: Path) -> Iterator[Path]:
    """A fresh folder outside the checkout, as a user's project or a CI job starts."""
    folder = tmp_path / "user"
    folder.mkdir()
    assert not folder.resolve().is_relative_to(ROOT), "the folder must be outside the checkout"
    yield folder
