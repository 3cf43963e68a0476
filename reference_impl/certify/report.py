"""Writing a graded certification to one folder: HTML for people, JSON for machines, JUnit for CI.

The HTML page is self-contained (inline CSS and SVG, no script, nothing fetched), so a vendor can
mail it to a customer. Rendering is pure (`render_html`, `to_json`, `render_junit` return strings);
`write_report` only writes them.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from reference_impl.certify.checks import (
    FAILING,
    MUST,
    Certification,
    CheckResult,
    TimelinePoint,
)
from reference_impl.certify.recording import Callback

HTML_NAME = "index.html"
JSON_NAME = "report.json"
JUNIT_NAME = "junit.xml"
REPORT_FORMAT = 1

MAX_BODY_CHARS = 4000
MAX_VALUE_CHARS = 160
MAX_CALLS_SHOWN = 8
MAX_EVIDENCE_ROWS = 50
VERDICT_PASSED = "CERTIFIED: no MUST check failed"
VERDICT_FAILED = "NOT CERTIFIED: a MUST check failed or is missing"

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:72em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f3f3f3}
.grade{font-weight:bold}.PASS{color:#176f2c}.FAIL,.MISSING{color:#b00020}
.NON-STRICT{color:#a15c00}.INFORMATIONAL{color:#345d9d}
.verdict{font-size:1.2em;padding:.5em;border:2px solid}
.ok{border-color:#176f2c}.ko{border-color:#b00020}
pre{background:#f7f7f7;padding:.5em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
code{word-break:break-all}
"""


_CODE = re.compile(r"`([^`]+)`")


def _inline(text: str) -> str:
    """Escape vendor-facing text, showing `backquoted` names as code."""
    return _CODE.sub(r"<code>\1</code>", escape(text))


def _clip(text: str, limit: int = MAX_BODY_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n... ({len(text) - limit} more characters in report.json)"


def _body_text(callback: Callback) -> str:
    try:
        text = callback.body.decode("utf-8")
    except UnicodeDecodeError:
        return repr(callback.body)
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def timeline_svg(points: tuple[TimelinePoint, ...], deadline_seconds: float) -> str:
    """A small chart: one dot per callback along seconds since the run started, the deadline a line.

    Dots are placed by arrival time; their height shows how many events the call carried (log
    scale) and their colour the status we answered, so retries after an injected 500 stand out.
    """
    width, height, pad = 640, 140, 30
    span = max([deadline_seconds, *(p.seconds for p in points), 1.0])

    def x(seconds: float) -> float:
        return pad + (width - 2 * pad) * max(seconds, 0.0) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Callback arrivals over time">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#888"/>',
        f'<line x1="{x(deadline_seconds):.1f}" y1="10" x2="{x(deadline_seconds):.1f}" '
        f'y2="{height - pad}" stroke="#b00020" stroke-dasharray="4 3"/>',
        f'<text x="{x(deadline_seconds):.1f}" y="10" font-size="10" text-anchor="end" '
        'fill="#b00020">deadline</text>',
        f'<text x="{pad}" y="{height - 8}" font-size="10">0 s</text>',
        f'<text x="{width - pad}" y="{height - 8}" font-size="10" text-anchor="end">'
        f"{span:.0f} s</text>",
    ]
    for point in points:
        level = min(1.0, (len(str(max(point.events, 1))) - 1) / 3)
        y = (height - pad - 10) - level * (height - 2 * pad - 20)
        colour = "#176f2c" if 200 <= point.status < 300 else "#b00020"
        if point.injected:
            colour = "#a15c00"
        parts.append(
            f'<circle class="arrival" cx="{x(point.seconds):.1f}" cy="{y:.1f}" r="4" '
            f'fill="{colour}"><title>#{point.seq} at {point.seconds:.1f} s: {point.events} '
            f"event(s), answered {point.status}"
            f"{' (' + escape(point.injected) + ' probe)' if point.injected else ''}</title>"
            "</circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _value(text: str | None) -> str:
    """An expected or received value, clipped in the page (report.json has it whole)."""
    if text is None:
        return ""
    shown = text if len(text) <= MAX_VALUE_CHARS else f"{text[:MAX_VALUE_CHARS]}..."
    more = f" <i>({len(text)} characters)</i>" if len(text) > MAX_VALUE_CHARS else ""
    return f"<code>{escape(shown)}</code>{more}"


def _evidence_html(check: CheckResult, calls: dict[int, Callback]) -> str:
    rows = []
    for item in check.evidence[:MAX_EVIDENCE_ROWS]:
        expected = _value(item.expected)
        actual = _value(item.actual)
        seq = f"#{item.callback_seq}" if item.callback_seq is not None else ""
        rows.append(
            f'<tr><td class="grade {escape(item.grade)}">{escape(item.grade)}</td>'
            f"<td>{escape(item.probe_id or '')}</td><td>{seq}</td><td>{escape(item.note)}</td>"
            f"<td>{expected}</td><td>{actual}</td></tr>"
        )
    parts = []
    if rows:
        more = len(check.evidence) - MAX_EVIDENCE_ROWS
        parts.append(
            "<table><tr><th>grade</th><th>probe</th><th>callback</th><th>note</th>"
            "<th>expected</th><th>received</th></tr>" + "".join(rows) + "</table>"
        )
        if more > 0:
            parts.append(f"<p>... and {more} more in report.json.</p>")
    deciding = [e for e in check.evidence if e.grade != "PASS"] or list(check.evidence)
    shown: list[int] = []
    for item in deciding:
        seq = item.callback_seq
        if seq is not None and seq in calls and seq not in shown:
            shown.append(seq)
        if len(shown) == MAX_CALLS_SHOWN:
            break
    for seq in shown:
        call = calls[seq]
        injected = f" (answered {escape(call.injected)} on purpose)" if call.injected else ""
        parts.append(
            f"<details><summary>Callback #{seq}: {escape(call.method)} {escape(call.path)} at "
            f"{_when(call.arrived_at)}, answered {call.status}{injected}</summary>"
            f"<p>Request body:</p><pre>{escape(_clip(_body_text(call)))}</pre>"
            f"<p>Response {call.status}:</p><pre>{escape(_clip(call.response))}</pre></details>"
        )
    return "".join(parts)


def render_html(result: Certification) -> str:
    """The self-contained page: verdict, summary table, timeline, then each check's evidence."""
    calls = {c.seq: c for c in result.callbacks}
    verdict = VERDICT_PASSED if result.passed else VERDICT_FAILED
    rows = "".join(
        f'<tr data-check="{escape(c.id)}"><td><a href="#check-{escape(c.id)}">{escape(c.id)}</a>'
        f'</td><td class="level">{c.level}</td><td class="grade {escape(c.grade)}">'
        f"{escape(c.grade)}</td><td>{_inline(c.title)}</td><td>{_inline(c.summary)}</td></tr>"
        for c in result.checks
    )
    sections = "".join(
        f'<section id="check-{escape(c.id)}"><h3>{escape(c.id)} ({c.level}): '
        f'<span class="grade {escape(c.grade)}">{escape(c.grade)}</span></h3>'
        f"<p>{_inline(c.meaning)}</p><p><b>{_inline(c.summary)}</b></p>"
        f"{_evidence_html(c, calls)}</section>"
        for c in result.checks
    )
    probes = "".join(
        f"<tr><td>{escape(p.id)}</td><td>{escape(p.to)}</td><td>{escape(p.expect)}</td>"
        f"<td>{len(p.meta)}</td><td>{escape(p.respond or '')}</td></tr>"
        for p in result.probes[:MAX_EVIDENCE_ROWS]
    )
    deadline = result.deadline_at - result.started_at
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>bounceback certification: {escape(result.plan_name)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>Certification: {escape(result.plan_name)}</h1>"
        f"<p>Run started {_when(result.started_at)}; deadline {deadline:.0f} s; "
        f"{len(result.probes)} probes sent, {len(result.callbacks)} callbacks received.</p>"
        f'<p id="verdict" class="verdict {"ok" if result.passed else "ko"}">{verdict}</p>'
        '<h2>Summary</h2><table id="summary"><thead><tr><th>check</th><th>level</th>'
        f"<th>grade</th><th>title</th><th>result</th></tr></thead><tbody>{rows}</tbody></table>"
        f"<h2>Timeline of arrivals</h2>{timeline_svg(result.timeline, deadline)}"
        "<p>Green: answered 2xx; red: answered with an error; amber: a probe response (500 or "
        "slow) given on purpose. Higher dots carried more events.</p>"
        f"<h2>Checks</h2>{sections}"
        "<h2>Probes</h2><table><tr><th>id</th><th>to</th><th>expected</th><th>meta length</th>"
        f"<th>probe response</th></tr>{probes}</table>"
        "</body></html>"
    )


def to_json(result: Certification) -> dict[str, Any]:
    """The whole result for machines, request bodies included in full."""
    return {
        "format": REPORT_FORMAT,
        "plan": result.plan_name,
        "started_at": result.started_at,
        "deadline_at": result.deadline_at,
        "passed": result.passed,
        "checks": [asdict(c) for c in result.checks],
        "probes": [asdict(p) for p in result.probes],
        "callbacks": [
            {
                "seq": c.seq,
                "arrived_at": c.arrived_at,
                "method": c.method,
                "path": c.path,
                "headers": [list(h) for h in c.headers],
                "body": c.body.decode("utf-8", errors="replace"),
                "status": c.status,
                "response": c.response,
                "injected": c.injected,
            }
            for c in result.callbacks
        ],
        "timeline": [asdict(p) for p in result.timeline],
    }


def render_junit(result: Certification) -> str:
    """One test case per check; only a MUST check graded FAIL or MISSING is a JUnit failure."""
    failures = sum(1 for c in result.checks if c.level == MUST and c.grade in FAILING)
    suite = ET.Element(
        "testsuite",
        name=f"bounceback certify {result.plan_name}",
        tests=str(len(result.checks)),
        failures=str(failures),
        errors="0",
        skipped="0",
        timestamp=datetime.fromtimestamp(result.started_at, UTC).isoformat(),
    )
    for check in result.checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"certify.{check.level}", name=check.id, time="0"
        )
        notes = "\n".join(
            f"{e.grade} {e.probe_id or ''} #{e.callback_seq or ''} {e.note}".strip()
            for e in check.evidence[:MAX_EVIDENCE_ROWS]
        )
        if check.level == MUST and check.grade in FAILING:
            failure = ET.SubElement(
                case, "failure", message=f"{check.grade}: {check.summary}", type=check.grade
            )
            failure.text = notes
        ET.SubElement(case, "system-out").text = f"{check.grade}: {check.summary}\n{notes}"
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def write_report(result: Certification, folder: Path) -> dict[str, Path]:
    """Write the three files into `folder` (created if needed) and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": folder / HTML_NAME,
        "json": folder / JSON_NAME,
        "junit": folder / JUNIT_NAME,
    }
    paths["html"].write_text(render_html(result), encoding="utf-8")
    paths["json"].write_text(json.dumps(to_json(result), indent=2), encoding="utf-8")
    paths["junit"].write_text(render_junit(result), encoding="utf-8")
    return paths
