"""The ESP side's public API (issue 10): each package's `__all__` is exactly what users import,
every name in it resolves, nothing public is left out of it, and every error derives from
`SimulatorError`.

A change to a list below is a change to the public API: make it on purpose, with the docs.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

import simulator
from simulator.errors import SimulatorError

PUBLIC = {
    "simulator": [
        "ESPConfigError",
        "ESPTimeout",
        "FakeESP",
        "Scenario",
        "ScenarioError",
        "SimulatorError",
        "load_scenario",
        "strategies",
    ],
    "simulator.esp": [
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
    ],
    "simulator.esp.auth": [
        "ACTIONS",
        "RESULTS",
        "RULES",
        "AuthSettings",
        "Blocklist",
        "Enforcement",
        "Judgement",
        "MessageFacts",
        "Verdicts",
        "Zone",
        "authenticate",
        "header_value",
        "judge",
        "judge_mail",
        "read_facts",
        "stamp",
    ],
    "simulator.protocol": [
        "BuiltBatch",
        "Difference",
        "Expected",
        "ExpectedFailure",
        "batch_reply",
        "build_batch",
        "check_response",
        "difference",
        "expected_for",
        "expected_response",
    ],
    "simulator.conformance": [
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
    ],
    "simulator.conformance.strategies": [
        "ANY_TEXT",
        "EDGE_NUMBERS",
        "FREE_TEXT",
        "Mutated",
        "batch",
        "build_meta",
        "delivery_events",
        "emails",
        "invalid_bodies",
        "json_values",
        "meta_values",
        "metas",
        "mixed_batches",
        "mutated_events",
        "near_valid_events",
        "opaque_metas",
        "oversized_batches",
        "valid_batches",
        "valid_events",
    ],
    "simulator.load": [
        "Acknowledged",
        "BatchFactory",
        "Built",
        "LedgerError",
        "ReadAPIError",
        "Verdict",
        "acknowledged_events",
        "difference",
        "read_ledgers",
    ],
}
PACKAGES = [
    "simulator.esp",
    "simulator.esp.auth",
    "simulator.protocol",
    "simulator.conformance",
    "simulator.load",
]


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_all_is_exactly_the_curated_list_and_every_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert list(module.__all__) == PUBLIC[package]
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_every_exported_error_derives_from_simulator_error(package: str) -> None:
    module = importlib.import_module(package)
    exported = [getattr(module, name) for name in module.__all__]
    errors = [x for x in exported if inspect.isclass(x) and issubclass(x, BaseException)]
    # ConformanceFailure is an AssertionError on purpose: a verdict for pytest, not an error.
    errors = [x for x in errors if not issubclass(x, AssertionError)]
    assert all(issubclass(error, SimulatorError) for error in errors), errors


def _modules(package: str) -> list[ModuleType]:
    path = importlib.import_module(package).__path__
    names = [info.name for info in pkgutil.walk_packages(path, package + ".")]
    # The suite's test modules run under pytest only, and importing Locust's user classes
    # monkey-patches this process with gevent (simulator/load/settings.py says why they are apart).
    skipped = (".suite", "simulator.load.users")
    return [importlib.import_module(n) for n in names if not any(s in n for s in skipped)]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_error_a_package_raises_is_exported_by_it(package: str) -> None:
    """Nothing public is missing: a user catching what a package raises finds it in `__all__`."""
    exported = set(importlib.import_module(package).__all__)
    missing = sorted(
        f"{module.__name__}.{name}"
        for module in _modules(package)
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, SimulatorError)
        and value.__module__ == module.__name__
        and name not in exported
    )
    assert missing == []


@pytest.mark.parametrize(
    "package",
    ["simulator.esp.auth", "simulator.protocol", "simulator.conformance", "simulator.load"],
)
def test_a_package_namespace_holds_no_public_name_outside_all(package: str) -> None:
    """What a package's `__init__` imports is either listed or one of its own submodules."""
    module = importlib.import_module(package)
    stray = [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and name not in module.__all__
        and not (inspect.ismodule(value) and value.__name__.startswith(package + "."))
        and name != "annotations"
    ]
    assert stray == []


def _defined_at_top_level(module: ModuleType) -> set[str]:
    """The names a module's own source binds at top level (imports excluded)."""
    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names - {"__all__"}


def test_every_public_name_of_the_strategies_module_is_listed_or_private() -> None:
    """Helpers must not leak: a public-looking name of `strategies` is in its `__all__`, which
    docs/conformance.md documents; anything else starts with an underscore."""
    from simulator.conformance import strategies

    public = {name for name in _defined_at_top_level(strategies) if not name.startswith("_")}
    assert public == set(strategies.__all__)


def test_importing_simulator_loads_no_server_until_a_name_is_used() -> None:
    """`import simulator` (the pytest plugin does) must not pull in aiosmtpd or trustme."""
    code = (
        "import sys, simulator, simulator.protocol\n"
        "print(sorted(m for m in ('aiosmtpd', 'trustme') if m in sys.modules))\n"
        "simulator.FakeESP\n"
        "print('aiosmtpd' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["[]", "True"]
    assert set(dir(simulator)) >= set(PUBLIC["simulator"])
