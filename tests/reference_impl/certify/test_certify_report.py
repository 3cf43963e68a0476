"""The report folder: self-contained HTML read back by a real browser, JSON, and JUnit XML."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from reference_impl.certify import checks as c
from reference_impl.certify.checks import grade
from reference_impl.certify.report import (
    VERDICT_FAILED,
    VERDICT_PASSED,
    bounceback_version,
    render_html,
    render_junit,
    timeline_svg,
    visible,
    write_report,
)
from tests.reference_impl.certify import builders as b

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


class SummaryReader(HTMLParser):
    """Collects the cells of `table#summary tbody`, the verdict text, and any external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.verdict = ""
        self.external: list[str] = []
        self._in_summary = False
        self._in_body = False
        self._cell: list[str] | None = None
        self._in_verdict = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            link = values.get(name) or ""
            if link and not link.startswith("#"):
                self.external.append(link)
        if tag == "table" and values.get("id") == "summary":
            self._in_summary = True
        elif self._in_summary and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag == "td":
            self._cell = []
        elif values.get("id") == "verdict":
            self._in_verdict = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_summary = self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "p":
            self._in_verdict = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_verdict:
            self.verdict += data


def _failing_result() -> c.Certification:
    def spam_to_hard(document: dict) -> dict:
        for item in document["events"]["failed"]:
            if item["type"] == "spam":
                item["type"] = "hard_bounce"
        return document

    return grade(b.replace_bodies(b.well_behaved(), spam_to_hard), deadline_at=b.T0 + b.DEADLINE)


def test_report_folder_has_html_json_and_junit(tmp_path: Path) -> None:
    result = _failing_result()
    paths = write_report(result, tmp_path / "report")
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "index.html",
        "junit.xml",
        "report.json",
    ]
    data = json.loads(paths["json"].read_text("utf-8"))
    assert data["passed"] is False
    assert {ch["id"]: ch["grade"] for ch in data["checks"]}["type-matches-outcome"] == "FAIL"
    assert len(data["callbacks"]) == len(result.callbacks)
    assert data["probes"][7]["meta"] == result.probes[7].meta


def test_junit_fails_exactly_the_failed_must_checks() -> None:
    suite = ET.fromstring(render_junit(_failing_result()))
    assert suite.get("tests") == str(len(c.CHECKS)) and suite.get("failures") == "1"
    failed = [
        case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None
    ]
    assert failed == ["type-matches-outcome"]


def test_html_is_self_contained_and_escapes_vendor_text() -> None:
    rec = b.well_behaved()
    hostile = b.call(9, 3.0, b'{"version": "<script>alert(1)</script>"}', status=400)
    html = render_html(
        grade(replace(rec, callbacks=(*rec.callbacks, hostile)), deadline_at=b.T0 + 60)
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    reader = SummaryReader()
    reader.feed(html)
    assert reader.external == []
    assert html.count('<circle class="arrival"') == len(rec.callbacks) + 1


def test_html_shows_the_deciding_request_and_response() -> None:
    html = render_html(_failing_result())
    section = html[html.index('id="check-type-matches-outcome"') :]
    section = section[: section.index("</section>")]
    assert "Request body:" in section and "Response 200:" in section
    assert "complaint@sim.test" in section


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium not installed (apt-get install -y chromium): browser read-back skipped",
)
@pytest.mark.e2e
def test_html_report_summary_read_back_from_headless_chromium(tmp_path: Path) -> None:
    """The issue asks: open the HTML report in headless Chromium and read the summary back."""
    result = _failing_result()
    paths = write_report(result, tmp_path / "report")
    completed = subprocess.run(
        [
            "chromium",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            paths["html"].resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    reader = SummaryReader()
    reader.feed(completed.stdout)
    grades = {row[0]: (row[1], row[2]) for row in reader.rows}
    assert list(grades) == [check.id for check in result.checks]
    assert grades["type-matches-outcome"] == ("MUST", "FAIL")
    assert grades["meta-byte-exact"] == ("MUST", "PASS")
    assert grades["retry-after-timeout"] == ("SHOULD", "PASS")
    assert reader.verdict.strip() == VERDICT_FAILED != VERDICT_PASSED


def test_long_metas_are_clipped_in_the_page_and_whole_in_json(tmp_path: Path) -> None:
    def fold_long(document: dict) -> dict:
        for item in document["events"]["failed"]:
            if len(item["meta"]) > 998:
                item["meta"] = b.python_folded(item["meta"])
        return document

    result = grade(b.replace_bodies(b.well_behaved(), fold_long), deadline_at=b.T0 + b.DEADLINE)
    long_meta = result.probes[7].meta
    paths = write_report(result, tmp_path)
    html = paths["html"].read_text("utf-8")
    section = html[html.index('id="check-meta-byte-exact"') :]
    assert "(1200 characters)" in section and long_meta not in section
    data = json.loads(paths["json"].read_text("utf-8"))
    meta_check = next(ch for ch in data["checks"] if ch["id"] == "meta-byte-exact")
    assert long_meta in [e["expected"] for e in meta_check["evidence"]]


def test_characters_a_reader_cannot_see_are_marked() -> None:
    """A leading or trailing space, a tab, a CR, a non-breaking space: each becomes a visible sign;
    a lone space between words stays a space."""
    assert visible("two words") == "two words"
    marked = visible(" a\tb\u00a0c\r ")
    for title in ("space", "tab", "non-breaking space", "carriage return"):
        assert f'<mark class="unseen" title="{title}">' in marked
    assert marked.count('title="space"') == 2
    assert visible("a  b").count('title="space"') == 2  # a double space is two marks


def test_a_meta_echoed_with_a_leading_space_is_marked_in_the_evidence() -> None:
    """The sent meta and the echoed one looked identical in the page (issue 11)."""

    def lead_with_space(document: dict) -> dict:
        for item in document["events"]["failed"]:
            if item["type"] == "spam":
                item["meta"] = " " + item["meta"]
        return document

    rec = b.replace_bodies(b.well_behaved(), lead_with_space)
    html = render_html(grade(rec, deadline_at=b.T0 + b.DEADLINE))
    section = html[html.index('id="check-meta-byte-exact"') :]
    section = section[: section.index("</section>")]
    assert '<code><mark class="unseen" title="space">' in section


def test_timeline_is_scaled_to_the_arrivals_and_has_ticks() -> None:
    """A 600 s deadline no longer squeezes arrivals of the first 13 s into the left edge."""
    rec = b.well_behaved()
    svg = timeline_svg(grade(rec, deadline_at=b.T0 + 600).timeline, 600)
    xs = [float(x) for x in re.findall(r'class="arrival" cx="([0-9.]+)"', svg)]
    assert max(xs) > 640 / 2  # the last arrival (12.6 s) lies in the right half
    labels = re.findall(r'class="tick-label"[^>]*>([^<]+)<', svg)
    assert labels[0] == "0 s" and len(labels) >= 3
    assert "deadline at 600 s" in svg
    inside = timeline_svg(grade(rec, deadline_at=b.T0 + 10).timeline, 10)
    assert '<line id="deadline"' in inside


def test_every_file_names_the_bounceback_version_and_the_vendor_host(tmp_path: Path) -> None:
    paths = write_report(_failing_result(), tmp_path, vendor_host="smtp.vendor.example")
    version = bounceback_version()
    html = paths["html"].read_text("utf-8")
    assert "smtp.vendor.example" in html and f"bounceback {version}" in html
    data = json.loads(paths["json"].read_text("utf-8"))
    assert (data["bounceback_version"], data["vendor_host"]) == (version, "smtp.vendor.example")
    suite = ET.parse(paths["junit"]).getroot()
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["bounceback_version"] == version
    assert suite.get("hostname") == "smtp.vendor.example"
