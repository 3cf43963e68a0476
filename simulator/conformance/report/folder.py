"""Writing the three files of a report into one folder."""

from __future__ import annotations

import json
from pathlib import Path

from simulator.conformance.grading import ConformRun
from simulator.conformance.report.as_html import render_html
from simulator.conformance.report.as_json import to_json
from simulator.conformance.report.as_junit import render_junit
from simulator.errors import SimulatorError

HTML_NAME = "index.html"
JSON_NAME = "report.json"
JUNIT_NAME = "junit.xml"


class ReportError(SimulatorError):
    """The report folder cannot be made or written."""


def write_report(run: ConformRun, folder: Path) -> dict[str, Path]:
    """Write index.html, report.json and junit.xml into `folder` (made if needed)."""
    paths = {"html": folder / HTML_NAME, "json": folder / JSON_NAME, "junit": folder / JUNIT_NAME}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths["html"].write_text(render_html(run), encoding="utf-8")
        paths["json"].write_text(json.dumps(to_json(run), indent=2), encoding="utf-8")
        paths["junit"].write_text(render_junit(run), encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report to {folder}: {exc.strerror or exc}") from exc
    return paths
