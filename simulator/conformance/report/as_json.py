"""`report.json`: the whole run for machines, request and reply bodies in full."""

from __future__ import annotations

from typing import Any

from simulator.conformance.client import Exchange
from simulator.conformance.context import ConformanceFailure
from simulator.conformance.grading import ConformRun, Outcome, ReceiverResult

REPORT_FORMAT = 1


def _text(content: bytes) -> str:
    return content.decode("utf-8", errors="backslashreplace")


def exchange_json(exchange: Exchange) -> dict[str, Any]:
    request = exchange.request
    return {
        "request": {
            "method": request.method,
            "url": request.url,
            "headers": [list(header) for header in request.headers],
            "body": _text(request.content),
        },
        "reply": {
            "status": exchange.status,
            "content_type": exchange.headers.get("content-type"),
            "body": _text(exchange.content),
        },
        "replay": request.as_curl(),
    }


def failure_json(failure: ConformanceFailure) -> dict[str, Any]:
    field_rows = [row.columns() for row in failure.differences]
    return {
        "case": failure.case,
        "note": failure.note,
        "differences": [{"field": f, "expected": e, "got": g} for f, e, g in field_rows],
        "exchange": exchange_json(failure.exchange) if failure.exchange else None,
    }


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    requirement = outcome.requirement
    return {
        "id": requirement.id,
        "title": requirement.title,
        "level": requirement.level.value,
        "applied_level": requirement.level_for(outcome.strict).value,
        "source": {
            "kind": requirement.source.kind.value,
            "file": requirement.source.file,
            "quote": requirement.source.quote,
        },
        "grade": outcome.shown,
        "blocking": outcome.blocking,
        "expected_failure": outcome.expected_failure,
        "skipped": outcome.skipped,
        "error": outcome.error,
        "seconds": round(outcome.seconds, 3),
        "examples": outcome.examples,
        "failures": [failure_json(failure) for failure in outcome.failures],
        "exchange": exchange_json(outcome.exchange) if outcome.exchange else None,
    }


def receiver_json(receiver: ReceiverResult) -> dict[str, Any]:
    return {
        "label": receiver.label,
        "url": receiver.url,
        "state_url": receiver.state_url,
        "passed": receiver.passed,
        "seconds": round(receiver.seconds, 3),
        "requirements": [outcome_json(outcome) for outcome in receiver.outcomes],
    }


def to_json(run: ConformRun) -> dict[str, Any]:
    return {
        "format": REPORT_FORMAT,
        "bounceback_version": run.version,
        "started_at": run.started_iso,
        "seed": run.seed,
        "strict": run.strict,
        "profile": run.profile,
        "passed": run.passed,
        "targets": [receiver.url for receiver in run.receivers],
        "receivers": [receiver_json(receiver) for receiver in run.receivers],
    }
