"""`index.html`: one self-contained page (inline CSS, no script, nothing fetched) a team can hand
over: receivers side by side, then each requirement's grade with the exchange that decided it,
the field differences and the curl line that replays it."""

from __future__ import annotations

import json
from html import escape

from simulator.conformance.client import Exchange
from simulator.conformance.context import ConformanceFailure
from simulator.conformance.grading import ConformRun, Outcome, ReceiverResult

MAX_BODY_CHARS = 4000
VERDICT_PASSED = "CONFORMANT: no MUST requirement failed"
VERDICT_FAILED = "NOT CONFORMANT: a MUST requirement failed"

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f3f3f3}
.grade{font-weight:bold}.PASS{color:#176f2c}.FAIL{color:#b00020}
.NON-STRICT{color:#a15c00}.INFORMATIONAL{color:#345d9d}.SKIPPED{color:#777}
.verdict{font-size:1.2em;padding:.5em;border:2px solid}.ok{border-color:#176f2c}
.ko{border-color:#b00020}
pre{background:#f7f7f7;padding:.5em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
code{word-break:break-all}
"""


def _clip(text: str, limit: int = MAX_BODY_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n... ({len(text) - limit} more characters in report.json)"


def _body(content: bytes) -> str:
    text = content.decode("utf-8", errors="backslashreplace")
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _exchange_html(exchange: Exchange, title: str) -> str:
    request = exchange.request
    content_type = exchange.headers.get("content-type", "<none>")
    return (
        f"<details><summary>{escape(title)}: {escape(request.method)} "
        f"{escape(request.url)}, answered HTTP {exchange.status}</summary>"
        f"<p>Request body ({len(request.content)} bytes):</p>"
        f"<pre>{escape(_clip(_body(request.content)))}</pre>"
        f"<p>Reply: HTTP {exchange.status} ({escape(content_type)})</p>"
        f"<pre>{escape(_clip(_body(exchange.content)))}</pre>"
        f'<p>Replay:</p><pre class="replay">{escape(_clip(request.as_curl()))}</pre>'
        "</details>"
    )


def _failure_html(failure: ConformanceFailure) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(f)}</code></td><td><code>{escape(e)}</code></td>"
        f"<td><code>{escape(g)}</code></td></tr>"
        for f, e, g in (row.columns() for row in failure.differences)
    )
    note = f"<p>Expected because: {escape(failure.note)}</p>" if failure.note else ""
    exchange = _exchange_html(failure.exchange, "The deciding exchange") if failure.exchange else ""
    return (
        f"<p>Case: <b>{escape(failure.case)}</b></p>{note}"
        '<table class="differences"><tr><th>field</th><th>expected</th><th>got</th></tr>'
        f"{rows}</table>{exchange}"
    )


def _outcome_html(receiver: ReceiverResult, outcome: Outcome) -> str:
    requirement = outcome.requirement
    level = requirement.level_for(outcome.strict).value
    parts = [
        f'<section id="{escape(receiver.label)}-{escape(requirement.id)}">'
        f"<h4>{escape(requirement.id)} ({level}) {escape(requirement.title)}: "
        f'<span class="grade {outcome.shown}">{outcome.shown}</span></h4>'
        f"<p>Source: {escape(requirement.source.describe())}; the project's reading: "
        f"PROTOCOL.md section {escape(requirement.section)}.</p>"
    ]
    if outcome.expected_failure:
        parts.append("<p>Listed in --expected-failures.</p>")
    if outcome.skipped:
        parts.append(f"<p>Not run: {escape(outcome.skipped)}</p>")
    if outcome.error:
        parts.append(f"<p>The check crashed: <code>{escape(outcome.error)}</code></p>")
    parts += [_failure_html(failure) for failure in outcome.failures]
    if not outcome.failures and outcome.exchange is not None:
        parts.append(_exchange_html(outcome.exchange, "The last exchange"))
    parts.append("</section>")
    return "".join(parts)


def _side_by_side(run: ConformRun) -> str:
    head = "".join(f"<th>{escape(r.label)}</th>" for r in run.receivers)
    rows = []
    for index, requirement in enumerate(run.requirements):
        cells = []
        for receiver in run.receivers:
            outcome = receiver.outcomes[index] if index < len(receiver.outcomes) else None
            shown = outcome.shown if outcome else ""
            cells.append(
                f'<td class="grade {shown}"><a href="#{escape(receiver.label)}-'
                f'{escape(requirement.id)}">{shown}</a></td>'
            )
        rows.append(
            f'<tr data-requirement="{escape(requirement.id)}"><td>{escape(requirement.id)}</td>'
            f"<td>{requirement.level_for(run.strict).value}</td>{''.join(cells)}"
            f"<td>{escape(requirement.title)}</td></tr>"
        )
    legend = "".join(
        f"<li><b>{escape(r.label)}</b>: <code>{escape(r.url)}</code>"
        f"{' (state: <code>' + escape(r.state_url) + '</code>)' if r.state_url else ''}: "
        f"{'passed' if r.passed else 'FAILED'}</li>"
        for r in run.receivers
    )
    return (
        f"<ul id='receivers'>{legend}</ul><table id=\"summary\"><thead><tr><th>requirement</th>"
        f"<th>level</th>{head}<th>title</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render_html(run: ConformRun) -> str:
    verdict = VERDICT_PASSED if run.passed else VERDICT_FAILED
    sections = "".join(
        f'<h3 id="{escape(r.label)}">{escape(r.label)}: {escape(r.url)}</h3>'
        + "".join(_outcome_html(r, o) for o in r.outcomes)
        for r in run.receivers
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>bounceback conformance report</title>"
        f"<style>{_CSS}</style></head><body><h1>Conformance report</h1>"
        f'<p id="about">Graded by bounceback {escape(run.version)} at {escape(run.started_iso)}'
        f"; seed <b>{run.seed}</b> (<code>--seed {run.seed}</code> draws the same examples); "
        f"profile {escape(run.profile)}; strict {'on' if run.strict else 'off'}.</p>"
        f'<p id="verdict" class="verdict {"ok" if run.passed else "ko"}">{verdict}</p>'
        "<p>PASS: met. FAIL: a MUST not met, the run fails. NON-STRICT: a SHOULD not met, "
        "reported only. INFORMATIONAL: the receiver chose differently where the page leaves it "
        "open. SKIPPED: the check needs the state read API (--state-url).</p>"
        f"<h2>Receivers side by side</h2>{_side_by_side(run)}"
        f"<h2>Requirements</h2>{sections}</body></html>"
    )
