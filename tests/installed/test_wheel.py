"""Issue 10, "everything a user needs travels in the wheel", read off the built wheel itself:
every code package, every shipped TOML file, PROTOCOL.md and the payload schema are in it, and
its runtime dependencies are exactly the third-party packages the code imports."""

from __future__ import annotations

import ast
import re
import sys
import zipfile
from email.parser import Parser
from importlib import metadata

import pytest

from tests.installed.conftest import ROOT, Installed

pytestmark = pytest.mark.installed

CODE = ("reference_impl", "simulator")
FIRST_PARTY = {*CODE, "bounceback_scenarios", "bounceback_examples", "bounceback_docs"}
DATA_PACKAGE = "bounceback_scenarios"
REQUIREMENT_NAME = re.compile(r"^[A-Za-z0-9._-]+")


def _names(installed: Installed) -> set[str]:
    with zipfile.ZipFile(installed.wheel) as wheel:
        return set(wheel.namelist())


def _metadata(installed: Installed) -> list[str]:
    with zipfile.ZipFile(installed.wheel) as wheel:
        (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(wheel.read(name).decode()).get_all("Requires-Dist") or []


def test_every_code_package_of_the_tree_is_in_the_wheel(installed: Installed) -> None:
    """Packages are listed by name in pyproject.toml; a new folder there must be added."""
    names = _names(installed)
    for top in CODE:
        for module in (ROOT / top).rglob("*.py"):
            relative = module.relative_to(ROOT).as_posix()
            folder = module.parent.relative_to(ROOT).as_posix()
            assert relative in names, (
                f"{relative} is not in the wheel: add {folder.replace('/', '.')!r} to "
                "[tool.setuptools] packages in pyproject.toml"
            )


def test_every_shipped_file_is_in_the_wheel(installed: Installed) -> None:
    names = _names(installed)
    for toml in (ROOT / "scenarios").rglob("*.toml"):
        relative = toml.relative_to(ROOT / "scenarios").as_posix()
        assert f"{DATA_PACKAGE}/{relative}" in names, relative
    for toml in (ROOT / "examples").glob("*.toml"):
        assert f"bounceback_examples/{toml.name}" in names, toml.name
    assert "bounceback_docs/PROTOCOL.md" in names
    assert "reference_impl/receiver/schemas/callback-v2.schema.json" in names
    dashboard = ROOT / "reference_impl/receiver/dashboard"
    for folder in ("templates", "static"):
        for path in (dashboard / folder).rglob("*.*"):
            relative = path.relative_to(ROOT).as_posix()
            assert relative in names, f"{relative} is not in the wheel: add it to package-data"


def test_the_dashboards_templates_and_static_files_are_in_the_wheel(installed: Installed) -> None:
    """Issue 15: the fake ESP's dashboard has no build step; it is served from package data."""
    names = _names(installed)
    web = ROOT / "simulator" / "esp" / "web"
    shipped = [*web.glob("templates/*"), *web.glob("static/*")]
    assert shipped
    for path in shipped:
        relative = path.relative_to(ROOT).as_posix()
        assert relative in names, (
            f"{relative} is not in the wheel: add it to [tool.setuptools.package-data]"
        )


def test_the_wheel_holds_no_tests_or_benches(installed: Installed) -> None:
    tops = {name.split("/", 1)[0] for name in _names(installed)}
    assert not tops & {"tests", "bench", "scenarios", "docs", "examples"}, tops


def _third_party_imports() -> set[str]:
    found: set[str] = set()
    for top in CODE:
        for module in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(module.read_text("utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module.split(".")[0])
    found -= set(sys.stdlib_module_names) | FIRST_PARTY | {"__future__"}
    # An import name is not always its distribution's name (`_pytest` ships in pytest).
    owners = metadata.packages_distributions()
    return {owners.get(name, [name])[0].lower().replace("-", "_") for name in found}


def test_runtime_dependencies_are_what_the_code_imports(installed: Installed) -> None:
    """A package only the tests import belongs in the dev extra, not in every user's venv."""
    runtime = {
        REQUIREMENT_NAME.match(line).group(0).lower().replace("-", "_")  # type: ignore[union-attr]
        for line in _metadata(installed)
        if "extra ==" not in line
    }
    assert runtime == _third_party_imports()
