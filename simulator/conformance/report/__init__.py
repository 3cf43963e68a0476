"""The report folder of `bounceback conform --report DIR`: HTML for people, JSON for machines,
JUnit for CI, each written from the same `ConformRun`; and the terminal's side-by-side table.

Written on the ESP side alone (no import of the certification's report): the two sides never
share code. Rendering is pure (strings and dicts); `write_report` only writes them.
"""

from simulator.conformance.report.about import bounceback_version
from simulator.conformance.report.as_html import render_html
from simulator.conformance.report.as_json import to_json
from simulator.conformance.report.as_junit import render_junit
from simulator.conformance.report.folder import HTML_NAME, JSON_NAME, JUNIT_NAME, write_report

__all__ = [
    "HTML_NAME",
    "JSON_NAME",
    "JUNIT_NAME",
    "bounceback_version",
    "render_html",
    "render_junit",
    "to_json",
    "write_report",
]
