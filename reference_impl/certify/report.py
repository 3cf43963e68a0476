"""Writing a graded certification to one folder: HTML for people, JSON for machines, JUnit for CI.

The HTML page is self-contained (inline CSS and SVG, no script, nothing fetched), so a vendor can
mail it to a customer. Rendering is pure (`render_html`, `to_json`, `render_junit` return strings);
`write_report` only writes them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict
from datetime import UTC, datetime
from html import escape
from importlib import metadata
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
mark.unseen{background:#ffe08a;color:#7a4b00;border-radius:2px;padding:0 1px}
"""

UNSEEN_CHARACTERS = {
    " ": ("\u2423", "space"),
    "\t": ("\u21e5", "tab"),
    "\r": ("\u240d", "carriage return"),
    "\n": ("\u240a", "line feed"),
    "\u00a0": ("\u237d", "non-breaking space"),
    "\u200b": ("\u2038", "zero-width space"),
    "\u200c": ("\u2038", "zero-width non-joiner"),
    "\u200d": ("\u2038", "zero-width joiner"),
    "\u2060": ("\u2038", "word joiner"),
    "\ufeff": ("\u2038", "byte order mark"),
}
"""Characters a reader cannot tell apart by eye, and the visible sign each is shown as."""


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


def tick_step(span: float, most: int = 8) -> float:
    """The largest-but-readable 1, 2 or 5 times a power of ten giving at most `most` ticks."""
    raw = max(span, 1e-9) / most
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _seconds_label(value: float, step: float) -> str:
    digits = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:.{digits}f} s"


def timeline_svg(points: tuple[TimelinePoint, ...], deadline_seconds: float) -> str:
    """A small chart: one dot per callback along seconds since the run started, with ticks.

    The axis is scaled to the arrivals (a 600 s deadline would otherwise squeeze callbacks that
    all came in the first seconds into one blot); the deadline is a line when it falls inside
    that range and a note at the right edge when it lies beyond. Dots are placed by arrival time;
    their height shows how many events the call carried (log scale) and their colour the status
    we answered, so retries after an injected 500 stand out.
    """
    width, height, pad = 640, 150, 30
    latest = max((p.seconds for p in points), default=0.0)
    step = tick_step(max(latest * 1.05, 1.0))
    span = step * math.ceil(max(latest * 1.05, 1.0) / step)

    def x(seconds: float) -> float:
        return pad + (width - 2 * pad) * min(max(seconds, 0.0), span) / span

    axis_y = height - pad
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Callback arrivals over time">',
        f'<line x1="{pad}" y1="{axis_y}" x2="{width - pad}" y2="{axis_y}" stroke="#888"/>',
    ]
    for index in range(round(span / step) + 1):
        value = index * step
        parts.append(
            f'<line class="tick" x1="{x(value):.1f}" y1="{axis_y}" x2="{x(value):.1f}" '
            f'y2="{axis_y + 4}" stroke="#888"/><text class="tick-label" x="{x(value):.1f}" '
            f'y="{height - 12}" font-size="10" text-anchor="middle">'
            f"{_seconds_label(value, step)}</text>"
        )
    if deadline_seconds <= span:
        parts += [
            f'<line id="deadline" x1="{x(deadline_seconds):.1f}" y1="10" '
            f'x2="{x(deadline_seconds):.1f}" y2="{axis_y}" stroke="#b00020" '
            'stroke-dasharray="4 3"/>',
            f'<text x="{x(deadline_seconds):.1f}" y="10" font-size="10" text-anchor="end" '
            'fill="#b00020">deadline</text>',
        ]
    else:
        parts.append(
            f'<text id="deadline" x="{width - pad}" y="10" font-size="10" text-anchor="end" '
            f'fill="#b00020">deadline at {deadline_seconds:.0f} s, beyond the last arrival '
            "&#8594;</text>"
        )
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


def visible(text: str) -> str:
    """Escape `text` for HTML, marking each character a reader cannot see as a visible sign.

    A leading space, a tab or a non-breaking space in a received meta looks the same as the meta
    sent; marked in both columns, the difference is where the reader looks.
    """
    parts = []
    for index, char in enumerate(text):
        sign = UNSEEN_CHARACTERS.get(char)
        if char == " " and 0 < index < len(text) - 1 and " " not in text[index - 1 : index + 2 : 2]:
            sign = None  # a lone space between words reads as one
        if sign is None:
            parts.append(escape(char))
        else:
            parts.append(f'<mark class="unseen" title="{sign[1]}">{sign[0]}</mark>')
    return "".join(parts)


def _value(text: str | None) -> str:
    """An expected or received value, clipped in the page (report.json has it whole)."""
    if text is None:
        return ""
    shown = text if len(text) <= MAX_VALUE_CHARS else f"{text[:MAX_VALUE_CHARS]}..."
    more = f" <i>({len(text)} characters)</i>" if len(text) > MAX_VALUE_CHARS else ""
    return f"<code>{visible(shown)}</code>{more}"


def bounceback_version() -> str:
    """The installed bounceback's version, named in every report so a reader can reproduce it."""
    try:
        return metadata.version("bounceback")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


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


def render_html(result: Certification, vendor_host: str | None = None) -> str:
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
        f'<p id="about">Vendor SMTP host: <b>{escape(vendor_host or "not recorded")}</b>; '
        f"graded by bounceback {escape(bounceback_version())}.</p>"
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


def to_json(result: Certification, vendor_host: str | None = None) -> dict[str, Any]:
    """The whole result for machines, request bodies included in full."""
    return {
        "format": REPORT_FORMAT,
        "bounceback_version": bounceback_version(),
        "vendor_host": vendor_host,
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


def render_junit(result: Certification, vendor_host: str | None = None) -> str:
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
        hostname=vendor_host or "",
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="bounceback_version", value=bounceback_version())
    ET.SubElement(properties, "property", name="vendor_host", value=vendor_host or "")
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


def write_report(
    result: Certification, folder: Path, vendor_host: str | None = None
) -> dict[str, Path]:
    """Write the three files into `folder` (created if needed) and return their paths.

    `vendor_host` is the SMTP host the probes went to (the plan's provider), named in each file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": folder / HTML_NAME,
        "json": folder / JSON_NAME,
        "junit": folder / JUNIT_NAME,
    }
    paths["html"].write_text(render_html(result, vendor_host), encoding="utf-8")
    paths["json"].write_text(json.dumps(to_json(result, vendor_host), indent=2), encoding="utf-8")
    paths["junit"].write_text(render_junit(result, vendor_host), encoding="utf-8")
    return paths
