"""The fake ESP: SMTP in (aiosmtpd), scenario-driven outcomes, spool, callbacks out.

`FakeESP` runs it (tests and `bounceback esp`); `load_scenario` reads a scenario file or a
shipped one by name; `SpoolReader` and `SpoolAPI` show what it received and sent back; `replies`
names every SMTP reply it gives; `ControlError` is a runtime control change it refused. The
names are loaded on first use (PEP 562): the catalog of shipped files, which the platform side's
`certify` uses, does not pull in aiosmtpd.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ControlError",
    "ESPConfigError",
    "ESPTimeout",
    "FakeESP",
    "MetaManglingError",
    "ProtocolSectionError",
    "Scenario",
    "ScenarioError",
    "SpoolAPI",
    "SpoolDiskFull",
    "SpoolError",
    "SpoolReader",
    "UnknownShipped",
    "find_shipped",
    "load_scenario",
    "parse_scenario",
    "replies",
    "shipped",
]

_HOMES = {
    "ControlError": "simulator.esp.controls",
    "ESPConfigError": "simulator.esp.preflight",
    "ESPTimeout": "simulator.esp.server",
    "FakeESP": "simulator.esp.server",
    "MetaManglingError": "simulator.esp.mangling",
    "ProtocolSectionError": "simulator.esp.catalog",
    "Scenario": "simulator.esp.scenario",
    "ScenarioError": "simulator.esp.scenario",
    "SpoolAPI": "simulator.esp.api",
    "SpoolDiskFull": "simulator.esp.spool",
    "SpoolError": "simulator.esp.spool",
    "SpoolReader": "simulator.esp.spool",
    "UnknownShipped": "simulator.esp.catalog",
    "find_shipped": "simulator.esp.catalog",
    "load_scenario": "simulator.esp.scenario",
    "parse_scenario": "simulator.esp.scenario",
    "shipped": "simulator.esp.catalog",
}


def __getattr__(name: str) -> Any:
    if name == "replies":
        value = importlib.import_module("simulator.esp.replies")
    elif name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module 'simulator.esp' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
