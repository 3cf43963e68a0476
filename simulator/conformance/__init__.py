"""Conformance suite, Hypothesis strategies and fuzzer for any v2 callback receiver.

`strategies` (public Hypothesis strategies), `requirements` (the catalogue, ids like `CB-4.2`),
`checks` (one check per requirement), `expect` and `difference` (the pure model and the diff),
`transport` and `client` (where requests go), `plugin` (the pytest11 plugin), `stateful`, `fuzz`
and `cli`. See docs/conformance.md.
"""

from simulator.conformance import strategies
from simulator.conformance.checks import ConformanceFailure, Context, run
from simulator.conformance.requirements import BY_ID, CATALOGUE, Grade, Level, Requirement

__all__ = [
    "BY_ID",
    "CATALOGUE",
    "ConformanceFailure",
    "Context",
    "Grade",
    "Level",
    "Requirement",
    "run",
    "strategies",
]
