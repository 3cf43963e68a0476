"""The ESP's side of the v2 SMTP callback protocol: the fake ESP, the conformance suite, load.

The names below are what users import; each is loaded on first use (PEP 562), so importing the
pytest plugin or the pure protocol core (`simulator.protocol`) never starts pulling in aiosmtpd,
and `import simulator` alone costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

from simulator.errors import SimulatorError

__all__ = [
    "ESPConfigError",
    "ESPTimeout",
    "FakeESP",
    "Scenario",
    "ScenarioError",
    "SimulatorError",
    "load_scenario",
    "strategies",
]

_HOMES = {
    "ESPConfigError": "simulator.esp",
    "ESPTimeout": "simulator.esp",
    "FakeESP": "simulator.esp",
    "Scenario": "simulator.esp",
    "ScenarioError": "simulator.esp",
    "load_scenario": "simulator.esp",
    "strategies": "simulator.conformance",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
