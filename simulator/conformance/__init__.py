"""Conformance suite, Hypothesis strategies and fuzzer for any v2 callback receiver.

`strategies` (public Hypothesis strategies), `requirements` (the catalogue, ids like `CB-4.2`),
`context` (what a check runs with and raises), `checks` (one check per requirement, asking the
ESP side's model in `simulator.protocol.expect` and comparing with its `difference`),
`transport` and `client` (where requests go), `plugin` (the pytest11 plugin), `stateful`, `fuzz`
and `cli`. See docs/conformance.md.
"""

from simulator.conformance import strategies
from simulator.conformance.checks import run
from simulator.conformance.client import (
    StatePagingError,
    StateResetUnsupported,
    StateUnauthorized,
)
from simulator.conformance.context import ConformanceFailure, Context, StateUnavailable
from simulator.conformance.failures import ReplayError
from simulator.conformance.report.folder import ReportError
from simulator.conformance.requirements import (
    BY_ID,
    CATALOGUE,
    Grade,
    Level,
    Requirement,
    UnknownRequirement,
)
from simulator.conformance.transport import TargetError

__all__ = [
    "BY_ID",
    "CATALOGUE",
    "ConformanceFailure",
    "Context",
    "Grade",
    "Level",
    "ReplayError",
    "ReportError",
    "Requirement",
    "StatePagingError",
    "StateResetUnsupported",
    "StateUnauthorized",
    "StateUnavailable",
    "TargetError",
    "UnknownRequirement",
    "run",
    "strategies",
]
