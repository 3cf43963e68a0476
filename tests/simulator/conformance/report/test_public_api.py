"""simulator.conformance.report's public API (issue 11): the curated `__all__`, and a report
written on the ESP side alone, importing nothing of the certification's (or any platform) code."""

from __future__ import annotations

import ast
from pathlib import Path

import simulator.conformance.report

PUBLIC = [
    "HTML_NAME",
    "JSON_NAME",
    "JUNIT_NAME",
    "bounceback_version",
    "render_html",
    "render_junit",
    "to_json",
    "write_report",
]


def test_the_public_names_are_the_curated_list() -> None:
    assert list(simulator.conformance.report.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(simulator.conformance.report, name) is not None


def test_the_report_imports_nothing_of_the_platform_side() -> None:
    folder = Path(simulator.conformance.report.__file__).parent
    for source in sorted(folder.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [name for name in imported if name.startswith("reference_impl")], source.name
