"""The verdicts against receivers written independently of bounceback (tests/independent/).

The two receivers were written from the source page and PROTOCOL.md alone, one on Python's
standard library and one on Node's built-in `http`, with their own wordings and check orders. Each
runs as a real subprocess on a loopback port and is tested the way a user tests a receiver: with
`bounceback conform` and `bounceback fuzz` as their own processes. A correct one must pass with no
MUST and no SHOULD failure; one with a deliberate bug (`--bug NAME`) must fail on the requirement
that bug breaks. The fuzz runs here are short; docs/conformance.md says how to run them for minutes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings

from simulator.conformance import checks
from simulator.conformance.client import CallbackClient, StateClient
from simulator.conformance.context import ConformanceFailure, Context
from simulator.conformance.requirements import BY_ID, Grade
from simulator.conformance.transport import url_target
from tests.simulator.conformance.processes import CLI, independent_receiver, run

RUNTIMES = ["python", "node"]
FUZZ_SECONDS = 12

# Each deliberate bug of tests/independent/README.md and the requirement it breaks.
BUGS = [
    ("wrong-total", "CB-4.9"),
    ("drop-unprocessed", "CB-4.2"),
    ("reorder-unprocessed", "CB-4.10"),
    ("accept-v1", "CB-3.1"),
    ("no-limit", "CB-3.8"),
    ("500-on-bad-json", "CB-4.6"),
    ("mangle-meta-echo", "CB-4.2"),
    ("rejects-unknown-keys", "CB-3.3"),
]
CATCH = settings(
    max_examples=15, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate]
)
"""For receivers expected to fail: finding the bug is the point, shrinking it only costs time."""


NOT_MET = {"MUST": "FAIL", "SHOULD": "NON-STRICT"}


def _failed(output: str, level: str) -> list[str]:
    """The requirement ids the run's grades table shows not met at `level` (one receiver)."""
    row = rf"^(CB-[0-9.]+) +{level} +{NOT_MET[level]} "
    return re.findall(row, output, flags=re.MULTILINE)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_correct_independent_receiver_conforms(runtime: str, tmp_path: Path) -> None:
    """Every MUST and SHOULD that runs without a state API passes (CB-3.x, CB-4.x)."""
    with independent_receiver(runtime) as url:
        result = run([*CLI, "conform", f"{url}/callback"], tmp_path, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert _failed(output, "MUST") == [] and _failed(output, "SHOULD") == [], output
    assert re.search(r": conformant to every MUST that ran \(\d+ PASS", output), output


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_correct_independent_receiver_survives_the_fuzzer(runtime: str, tmp_path: Path) -> None:
    """CB-4.8 to CB-4.11 over generated input, edge numbers in unknown keys included."""
    with independent_receiver(runtime) as url:
        result = run(
            [*CLI, "fuzz", f"{url}/callback", "--seconds", str(FUZZ_SECONDS)],
            tmp_path,
            timeout=FUZZ_SECONDS * 10,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"over 4 properties, 0 failed", output), output


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_deliberate_bug_fails_its_requirement_in_conform(runtime: str, tmp_path: Path) -> None:
    """`bounceback conform` exits 1 and names the broken MUST (CB-3.1 for `accept-v1`)."""
    with independent_receiver(runtime, "accept-v1") as url:
        result = run([*CLI, "conform", f"{url}/callback", "-k", "CB-3"], tmp_path, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert _failed(output, "MUST") == ["CB-3.1"], output


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(("bug", "requirement_id"), BUGS)
def test_a_deliberate_bug_fails_its_requirement(
    runtime: str, bug: str, requirement_id: str
) -> None:
    """Each bug fails the MUST it breaks (the correct receiver passes them all, above)."""
    with independent_receiver(runtime, bug) as url:
        ctx = Context(CallbackClient(url_target(f"{url}/callback")), CATCH)
        with ctx.client, pytest.raises(ConformanceFailure) as caught:
            checks.run(BY_ID[requirement_id], ctx)
    assert caught.value.requirement.id == requirement_id
    assert caught.value.grade is Grade.FAIL
    assert caught.value.differences


class ProfileState(StateClient):
    """The independent receivers' read API: `GET /state/profile?email=` and no system events."""

    def profile(self, email: str) -> dict[str, Any] | None:
        response = self.http.get(f"{self.base_url}/state/profile", params={"email": email})
        response.raise_for_status()
        return response.json()


class ProfileStateClient(CallbackClient):
    @property
    def state(self) -> StateClient | None:
        return ProfileState(self.http, self.target.state_url or "")


def _subscription_context(base_url: str, failing: bool) -> Context:
    check_settings = CATCH if failing else settings(CATCH, max_examples=6, phases=list(Phase))
    client = ProfileStateClient(url_target(f"{base_url}/callback", base_url))
    return Context(client, check_settings)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_subscriptions_follow_the_model_through_the_profile_api(runtime: str) -> None:
    """CB-5.6 over their own state API (the suite's CLI speaks the reference's /api/ routes)."""
    with independent_receiver(runtime) as url:
        ctx = _subscription_context(url, failing=False)
        with ctx.client:
            checks.run(BY_ID["CB-5.6"], ctx)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_soft_bounce_that_unsubscribes_fails_the_subscription_model(runtime: str) -> None:
    """CB-5.6: `--bug soft-unsubscribes` breaks "soft bounces [...] are not marked unsubscribed"."""
    with independent_receiver(runtime, "soft-unsubscribes") as url:
        ctx = _subscription_context(url, failing=True)
        with ctx.client, pytest.raises(ConformanceFailure) as caught:
            checks.run(BY_ID["CB-5.6"], ctx)
    assert caught.value.requirement.id == "CB-5.6"
    assert any("subscribed" in row.field for row in caught.value.differences)
