"""One test per requirement of PROTOCOL.md sections 3-5, ids like `CB-4.2 partial failure ...`.

The checks themselves live in `simulator.conformance.checks`; this module only turns each
catalogue entry into a pytest test so that selection (`-k CB-4`), JUnit XML (`--junitxml`) and
strict xfails (`--expected-failures`) work the pytest way.
"""

from __future__ import annotations

import pytest

from simulator.conformance import checks
from simulator.conformance.context import Context, StateUnavailable
from simulator.conformance.requirements import CATALOGUE, Requirement

pytestmark = pytest.mark.bounceback_conformance


@pytest.mark.parametrize("requirement", CATALOGUE, ids=[r.label for r in CATALOGUE])
def test_requirement(requirement: Requirement, conformance_context: Context) -> None:
    try:
        checks.run(requirement, conformance_context)
    except StateUnavailable as exc:
        pytest.skip(f"{requirement.id}: {exc}")
