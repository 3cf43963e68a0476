"""Small Flask receivers used as fixtures: one conforming, and the same with one bug each.

The conforming one is written from PROTOCOL.md directly (not from `expect.py` and not from the
reference receiver), so the suite passing against it and failing against each variant shows that
the checks find real faults rather than mirror one implementation. Each bug name is a flag.
"""

from __future__ import annotations

import json
import math
import re
import threading
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request

READ_ERROR = "Exception occurred while reading input stream"
MISSING = "Bad request. Some mandatory parameters were missing."
TOO_MANY = "More than allowed events received."
TYPES = {"hard_bounce", "soft_bounce", "spam", "unsubscribed", "bounce"}
UNSUBSCRIBING = {"hard_bounce", "spam", "unsubscribed", "bounce"}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

BUGS = frozenset(
    {
        "soft_bounce_unsubscribes",  # CB-5.2: a soft bounce unsubscribes the profile
        "refuses_unknown_keys",  # CB-3.3: an event with an extra key is a 400
        "partial_failure_is_400",  # CB-4.2: one bad event turns the whole batch into a 400
        "accepts_1001",  # CB-3.8: the limit is checked with > 1001
        "limit_per_group",  # CB-3.8: 1000 failed + 1 success slips through
        "stores_before_limit",  # CB-3.9: events are applied before the size check
        "echo_drops_unknown_keys",  # CB-4.2: unprocessed entries lose keys the spec does not define
        "reversed_unprocessed",  # CB-4.10: failed events listed in reverse order
        "processed_equals_total",  # CB-4.9: PROCESSED_EVENTS counts the failed events too
        "crash_on_list_type",  # CB-4.8: an unhashable type crashes the handler (500)
        "double_applies_duplicates",  # CB-5.5: a retried event raises its system events again
        "attributes_by_email",  # CB-5.1: the profile is the event's email, not the meta's
        "plain_text_errors",  # CB-4.6: refusals are text/plain, not JSON
        "custom_email_message",  # CB-4.12 (informational): email errors say "bad address"
        "lenient_meta",  # CB-4.19 (informational; CB-4.10 under strict): any non-empty string meta
        "perl_numbers",  # CB-4.20: echoed numbers printed as JSON::PP does (%.15g): other doubles
        "infinity_echo",  # CB-4.11: numbers read as floats, so 1e400 is echoed as Infinity
    }
)
CHOICES = frozenset(
    {
        # Not a bug (PROTOCOL.md section 4, docs/conformance.md 13): a number no double holds makes
        # the body unreadable, as Go's parser has it, so 1e400 or 401 digits get the read error.
        "refuses_overflowing_numbers",
    }
)


def _double(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise ValueError(f"{literal} overflows a double")
    return value


def _int_within_doubles(literal: str) -> int:
    _double(literal)
    return int(literal)


def _meta_ok(meta: Any) -> bool:
    if not isinstance(meta, str):
        return False
    parts = meta.rsplit("|", 7)
    if len(parts) != 8 or parts[7] != "":
        return False
    email, account, sent, date, variant, label, message_id, _ = parts
    if "@" not in email or not label or not re.fullmatch(r"-?[0-9]+", message_id):
        return False
    if not all(re.fullmatch(r"[0-9]+", p) for p in (account, sent, variant)):
        return False
    try:
        return date == datetime.fromtimestamp(int(sent), UTC).strftime("%Y%m%d")
    except (OverflowError, OSError, ValueError):
        return False


def toy_receiver(*bugs: str) -> Flask:
    unknown = set(bugs) - BUGS - CHOICES
    if unknown:
        raise ValueError(f"unknown flags {sorted(unknown)}; choose from {sorted(BUGS | CHOICES)}")
    app = Flask("toy_receiver")
    lock = threading.Lock()
    profiles: dict[str, bool] = {}
    system_events: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def reply(status: int, body: dict[str, Any]) -> Response:
        if status == 400 and "plain_text_errors" in bugs:
            return Response(body["error"], status=400, mimetype="text/plain")
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def shortened(value: Any) -> Any:
        """A number as Perl's JSON::PP prints it: 15 significant digits (null past the doubles)."""
        if isinstance(value, float) or (isinstance(value, int) and abs(value) >= 2**64):
            try:
                printed = float(f"{float(value):.15g}")
            except OverflowError:
                return None
            return value if math.isinf(printed) else printed
        if isinstance(value, dict):
            return {k: shortened(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shortened(v) for v in value]
        return value

    def refuse(message: str) -> Response:
        return reply(
            400,
            {"error": message, "TOTAL_EVENTS": 0, "PROCESSED_EVENTS": 0, "UNPROCESSED_EVENTS": []},
        )

    def problem(event: Any, allowed: set[str]) -> str | None:
        if not isinstance(event, dict):
            return "event is not a JSON object"
        kind = event.get("type")
        if "crash_on_list_type" in bugs:
            kind in allowed  # noqa: B015 - the bug: a list is unhashable, so this raises
        if not isinstance(kind, str) or kind not in allowed:
            return "Could not map event to any bounce type"
        if "lenient_meta" in bugs:
            if not isinstance(event.get("meta"), str) or not event["meta"]:
                return "invalid meta"
        elif not _meta_ok(event.get("meta")):
            return "invalid meta"
        email = event.get("email")
        if not isinstance(email, str) or not EMAIL.fullmatch(email):
            return "bad address" if "custom_email_message" in bugs else "invalid email"
        if "refuses_unknown_keys" in bugs and set(event) - {"type", "email", "meta", "description"}:
            return "unknown key"
        return None

    def apply(event: dict[str, Any]) -> None:
        kind, meta = event["type"], event["meta"]
        if kind == "delivered":
            return
        key = (meta, kind)
        if key in seen and "double_applies_duplicates" not in bugs:
            return
        seen.add(key)
        fields = meta.rsplit("|", 7)
        if not _meta_ok(meta):  # lenient_meta: keep the event, derive nothing from its fields
            profiles.setdefault(event["email"].lower(), True)
            return
        profile = (event["email"] if "attributes_by_email" in bugs else fields[0]).lower()
        base = {"meta": meta, "message_id": int(fields[6]), "profile": profile}
        if kind in ("hard_bounce", "soft_bounce"):
            properties = {
                "Error": kind.replace("_", " "),
                "Campaign id": int(fields[6]),
                "Label": fields[5],
                "Variant": int(fields[4]),
            }
            system_events.append({**base, "name": "Notification Failed", "properties": properties})
        if kind in UNSUBSCRIBING:
            properties = {
                "Type": kind,
                "reason": event.get("description"),
                "Campaign id": int(fields[6]),
                "Label": fields[5],
                "Variant": int(fields[4]),
            }
            system_events.append({**base, "name": "Channel Unsubscribed", "properties": properties})
        unsubscribes = kind in UNSUBSCRIBING or (
            kind == "soft_bounce" and "soft_bounce_unsubscribes" in bugs
        )
        profiles[profile] = profiles.get(profile, True) and not unsubscribes

    @app.post("/callback")
    def callback() -> Response:
        number = float if "infinity_echo" in bugs else int
        hooks: dict[str, Any] = {"parse_int": number}
        if "refuses_overflowing_numbers" in bugs:
            hooks = {"parse_int": _int_within_doubles, "parse_float": _double}
        try:
            body = json.loads(request.get_data().decode("utf-8"), **hooks)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return refuse(READ_ERROR)
        if not isinstance(body, dict) or body.get("version") != "v2":
            return refuse(MISSING)
        if "refuses_unknown_keys" in bugs and set(body) - {"version", "events"}:
            return refuse(MISSING)
        events = body.get("events")
        if not isinstance(events, dict) or ("failed" not in events and "success" not in events):
            return refuse(MISSING)
        failed, success = events.get("failed", []), events.get("success", [])
        if not isinstance(failed, list) or not isinstance(success, list):
            return refuse(MISSING)
        limit = 1001 if "accepts_1001" in bugs else 1000
        total = len(failed) + len(success)
        with lock:
            if "stores_before_limit" in bugs:
                for event in failed:
                    if problem(event, TYPES) is None:
                        apply(event)
            too_many = (
                max(len(failed), len(success)) > limit
                if "limit_per_group" in bugs
                else total > limit
            )
            if too_many:
                return refuse(TOO_MANY)
            unprocessed = []
            for group, allowed in ((failed, TYPES), (success, {"delivered"})):
                for event in group:
                    why = problem(event, allowed)
                    if why is None:
                        apply(event)
                        continue
                    if not isinstance(event, dict):
                        unprocessed.append({"event": event, "errorDescription": why})
                        continue
                    echoed = dict(event)
                    if "perl_numbers" in bugs:
                        echoed = {
                            k: v if k in ("type", "email", "meta", "description") else shortened(v)
                            for k, v in event.items()
                        }
                    if "echo_drops_unknown_keys" in bugs:
                        echoed = {
                            k: v
                            for k, v in event.items()
                            if k in ("type", "email", "meta", "description")
                        }
                    unprocessed.append({**echoed, "errorDescription": why})
        if unprocessed and "partial_failure_is_400" in bugs:
            return refuse(MISSING)
        if "reversed_unprocessed" in bugs:
            unprocessed.reverse()
        out: dict[str, Any] = {}
        if unprocessed:
            out["error"] = f"{len(unprocessed)} event(s) failed to process"
        processed = total if "processed_equals_total" in bugs else total - len(unprocessed)
        out.update(TOTAL_EVENTS=total, PROCESSED_EVENTS=processed, UNPROCESSED_EVENTS=unprocessed)
        return reply(200, out)

    @app.get("/api/profiles/<path:email>")
    def profile(email: str) -> Response:
        key = email.lower()
        if key not in profiles:
            return reply(404, {"error": "no such profile"})
        return reply(200, {"email": key, "subscribed": profiles[key], "history": []})

    @app.get("/api/events")
    def events_api() -> Response:
        message_id = request.args.get("message_id")
        found = [
            e for e in system_events if message_id is None or str(e["message_id"]) == message_id
        ]
        return reply(200, {"events": found})

    return app


def conforming_app() -> Flask:
    """Zero-argument factory for `--receiver-app ...receivers:conforming_app`."""
    return toy_receiver()
