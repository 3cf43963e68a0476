"""`bounceback conform` and `bounceback fuzz` as a shell runs them, against real receivers.

Every test starts the command as its own process, in an empty folder, against a receiver served
on a loopback port: the reference receiver, or an independent one from tests/independent/.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from reference_impl.receiver.server import RunningReceiver
from tests.simulator.conformance.processes import CLI, independent_receiver, run

COMMANDS = ["conform", "fuzz"]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _one_line_stop(result, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    """An operator's mistake: exit 2, one line on stderr naming it, no traceback, no checks run."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert "CB-" not in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_a_path_the_receiver_does_not_have_stops_the_run_at_once(
    command: str, tmp_path: Path
) -> None:
    """A 404 on the probe: exit 2 before any requirement runs (it used to grade 22 failures)."""
    with independent_receiver() as url:
        result = run([*CLI, command, f"{url}/callbak"], tmp_path)
    _one_line_stop(result, f"bounceback {command}:", f"{url}/callbak", "HTTP 404")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_path_that_takes_no_post_stops_the_run_at_once(
    command: str, receiver: RunningReceiver, tmp_path: Path
) -> None:
    """A 405 on the probe (the reference receiver's read API takes GET only): exit 2."""
    result = run([*CLI, command, f"{receiver.url}/api/events"], tmp_path)
    _one_line_stop(result, "HTTP 405")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_refused_connection_stops_the_run_at_once(command: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/callback"
    result = run([*CLI, command, url], tmp_path)
    _one_line_stop(result, f"cannot reach the receiver at {url}")


def test_conform_leaves_nothing_in_the_working_folder(
    receiver: RunningReceiver, tmp_path: Path
) -> None:
    """Hypothesis's database and Unicode tables go to a temporary folder, not `.hypothesis/`."""
    folder = tmp_path / "work"
    folder.mkdir()
    result = run([*CLI, "conform", receiver.callback_url, "-k", "CB-4.9"], folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(folder.iterdir()) == []


def test_fuzz_writes_whole_lines_to_a_log_that_is_not_a_terminal(
    receiver: RunningReceiver, tmp_path: Path
) -> None:
    """A CI log got a live bar's cut lines (`1020 example…`); now one whole line per event."""
    result = run([*CLI, "fuzz", receiver.callback_url, "--max-examples", "5"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "…" not in result.stderr
    for requirement_id in ("CB-4.8", "CB-4.9", "CB-4.10", "CB-4.11"):
        assert re.search(rf"^{re.escape(requirement_id)} .*: fuzzing$", result.stderr, re.M)
        finished = rf"^{re.escape(requirement_id)} .*: passed, \d+ examples in 1 round\(s\), "
        assert re.search(finished + r"[0-9.]+ s$", result.stderr, re.M), result.stderr


def test_conform_reads_a_guarded_state_api_with_the_state_token(tmp_path: Path) -> None:
    """A receiver whose read API asks for a token: the section 5 checks pass with
    $BOUNCEBACK_STATE_TOKEN, and without it fail saying to pass --state-token."""
    from reference_impl.receiver.server import running_receiver

    token = "read-0b5e7f21c9d4"
    with running_receiver(tmp_path / "guarded.sqlite3", read_token=token) as guarded:
        args = [*CLI, "conform", guarded.callback_url, "--state-url", guarded.url, "-k", "CB-5"]
        without = run(args, tmp_path, timeout=300)
        granted = run(args, tmp_path, timeout=300, env={"BOUNCEBACK_STATE_TOKEN": token})
    assert without.returncode == 1, without.stdout + without.stderr
    assert "--state-token" in without.stdout + without.stderr
    assert granted.returncode == 0, granted.stdout + granted.stderr
    assert "SKIPPED" not in granted.stdout
    assert token not in granted.stdout + granted.stderr
