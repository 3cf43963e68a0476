"""The ESP side's one exception tree: every error raised on purpose derives from `SimulatorError`.

The CLI catches `SimulatorError` and prints its message on one line (exit 2); anything else is
a bug and keeps its traceback. Each class is defined next to the code that raises it; this module
holds the root and the map of the tree:

    SimulatorError
    ├── ScenarioError            (esp.scenario: a scenario file is wrong; every key and reason)
    ├── ESPConfigError           (esp.preflight: the fake ESP cannot start with these settings)
    ├── ESPTimeout               (esp.server: callbacks not delivered in time)
    ├── SpoolError               (esp.spool: the spool cannot be opened or written)
    │   └── SpoolDiskFull        (esp.spool: a spool write met a full disk)
    ├── ControlError             (esp.controls: a runtime control change is wrong; every key)
    ├── MetaManglingError        (esp.mangling: a mangling policy cannot be applied)
    ├── UnknownShipped           (esp.catalog: no shipped scenario, plan or profile of that name)
    ├── ProtocolSectionError     (esp.catalog: PROTOCOL.md has no such section)
    ├── TargetError              (conformance.transport: the receiver under test cannot be reached)
    ├── UnknownRequirement       (conformance.requirements: no requirement has that id)
    ├── StateUnavailable         (conformance.context: the receiver exposes no state to check)
    ├── StatePagingError         (conformance.client: the read API's `next` never reaches the end)
    ├── StateUnauthorized        (conformance.client: the read API wants a token, or another one)
    ├── StateResetUnsupported    (conformance.client: the receiver offers no DELETE /api/state)
    ├── ReplayError              (conformance.failures: a saved failure cannot be read or replayed)
    └── ReportError              (conformance.report.folder: the report folder cannot be written)

`ConformanceFailure` is an `AssertionError` on purpose: it is a verdict for pytest, not an error.
"""

from __future__ import annotations

__all__ = ["SimulatorError"]


class SimulatorError(Exception):
    """Root of every error the ESP side raises on purpose; its message says what to do."""
