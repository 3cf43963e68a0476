"""Grading a certification run: a recording in, one graded result per check out. Pure, no I/O.

Each check has an id, a level (MUST, SHOULD or INFORMATIONAL, as far as its provenance allows:
see `provenance`) and one grade. Every problem is charged to exactly one check, so a vendor sees
the one thing it got wrong: an event whose meta came back
mangled but still recognisable (folding whitespace removed, RFC 2047 encoded-words decoded) fails
`meta-byte-exact` and is still attributed to its probe for the type, email and arrival checks; an
event in a call of 1001 events counts as arrived, and only `max-1000-events` fails.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from typing import Any

from reference_impl.certify.plan import DELIVERED, RESPOND_500, RESPOND_SLOW
from reference_impl.certify.provenance import Provenance, check_level, decision, page, reading
from reference_impl.certify.recording import Callback, Recording, SentProbe
from reference_impl.protocol.payload import (
    BOUNCE,
    FAILED,
    HARD_BOUNCE,
    RFC_8259,
    SUCCESS,
    VERSION,
)
from reference_impl.protocol.replies import MAX_EVENTS

__all__ = [
    "CHECKS",
    "FAIL",
    "FAILING",
    "GRADES",
    "INFO",
    "INFORMATIONAL",
    "LEVELS",
    "MISSING",
    "MUST",
    "NON_STRICT",
    "PASS",
    "SHOULD",
    "Certification",
    "CheckDef",
    "CheckResult",
    "Evidence",
    "TimelinePoint",
    "describe_mismatch",
    "grade",
    "normalise_meta",
]

MUST = "MUST"
SHOULD = "SHOULD"
# A level too: a check that is reported and never fails (a decision of bounceback's, a measure).
INFO = "INFORMATIONAL"
LEVELS = (MUST, SHOULD, INFO)

PASS = "PASS"
NON_STRICT = "NON-STRICT"
INFORMATIONAL = "INFORMATIONAL"
FAIL = "FAIL"
MISSING = "MISSING"
GRADES = (PASS, NON_STRICT, INFORMATIONAL, FAIL, MISSING)
_SEVERITY = {PASS: 0, INFORMATIONAL: 1, NON_STRICT: 2, MISSING: 3, FAIL: 4}
FAILING = frozenset({FAIL, MISSING})

JSON_MEDIA_TYPE = "application/json"
CERTIFICATION_DOC = "docs/certification.md"


@dataclass(frozen=True, slots=True)
class CheckDef:
    """One check: its id, level, title, what it means, and where that requirement comes from."""

    id: str
    level: str
    title: str
    meaning: str
    provenance: Provenance

    def __post_init__(self) -> None:
        check_level(self.id, self.level, self.provenance)


CHECK_BODY_JSON_V2 = CheckDef(
    "body-json-v2",
    MUST,
    "Body is JSON with version v2",
    "Every callback body is a UTF-8 JSON object (RFC 8259: `NaN` and `Infinity` are not JSON)"
    " whose `version` is the string `v2`.",
    page(
        "This must be set to v2 to track the delivery-related information such as success,"
        " failures, unsubscribes, and spam reports."
    ),
)
CHECK_EVENTS_FAILED = CheckDef(
    "events-grouped-failed",
    MUST,
    "Events grouped under `failed`",
    "`events` is an object; failure events (hard_bounce, soft_bounce, spam, unsubscribed) are in "
    "the list `events.failed`; an optional `events.success` list holds only `delivered` events.",
    page("event | Denotes the event name. | Required | failed |"),
)
CHECK_MAX_EVENTS = CheckDef(
    "max-1000-events",
    MUST,
    "At most 1000 events per call",
    "No callback carries more than 1000 events, all groups together.",
    page("This occurs if more than 1000 events are sent in a single API call."),
)
CHECK_META_EXACT = CheckDef(
    "meta-byte-exact",
    MUST,
    "`meta` echoed byte-exact",
    "Each event's `meta` is byte-for-byte one of the X-CleverTap_META values that were sent, "
    "including metas longer than 78 and than 998 characters (header folding must be undone).",
    page(
        "The provider must return this value as is, in the callback payload under the meta key to"
        " properly attribute the callback to the correct profile and campaign."
    ),
)
CHECK_RELAYED_META = CheckDef(
    "meta-whole-after-relay",
    SHOULD,
    "`meta` whole after a relay folded it",
    "A meta over 980 characters reaches the vendor folded by a relay (CRLF and a space inserted "
    "past 998 characters, as Postfix does); the vendor removes the folding whitespace and echoes "
    "the meta whole. Keeping the space (RFC 5322 unfolding) is NON-STRICT.",
    reading(
        "The meta must come back byte-exact whatever its length or the client that carried it.", 2
    ),
)
CHECK_TYPE = CheckDef(
    "type-matches-outcome",
    MUST,
    "`type` matches the address's outcome",
    "Each event's `type` is the outcome its probe address is meant to trigger; a delivered probe "
    "gets no failure event. The legacy `bounce` for a hard bounce is NON-STRICT.",
    page(
        "The type parameter in this event specifies the reason for the failure, such as hard"
        " bounce, soft bounce, spam, or unsubscribed."
    ),
)
CHECK_EMAIL = CheckDef(
    "email-matches-recipient",
    MUST,
    "`email` matches the recipient",
    "Each event's `email` is the recipient of the message its meta belongs to (differing only in "
    "letter case is NON-STRICT).",
    page("Denotes the email address of the recipient. | Required | user1@example.com |"),
)
CHECK_DESCRIPTION = CheckDef(
    "description-present",
    INFO,
    "`description` present (informational)",
    "Whether each failure event carries a non-empty `description` string; optional on the page.",
    decision(
        "A missing `description` is reported, never failed: the page calls it an optional field.",
        CERTIFICATION_DOC,
    ),
)
CHECK_CONTENT_TYPE = CheckDef(
    "content-type-json",
    SHOULD,
    "Content-Type is JSON",
    "Each callback is sent with `Content-Type: application/json`.",
    reading("`POST <callback URL>` with a JSON object", 3),
)
CHECK_NO_DUPLICATES = CheckDef(
    "no-unprompted-duplicates",
    INFO,
    "No duplicate without a failed delivery (informational)",
    "Whether an event (same probe, group and type) is sent again only after a delivery of it "
    "failed (a non-2xx answer or the slow response).",
    decision(
        "A duplicate sent without a failed delivery is reported, never failed: the page is silent"
        " on duplicates, and a receiver must absorb them anyway.",
        CERTIFICATION_DOC,
    ),
)
CHECK_RETRY_500 = CheckDef(
    "retry-after-500",
    SHOULD,
    "Retried after a 500",
    "The callback answered with 500 on purpose is delivered again later; the delay is reported.",
    reading("SendGrid retries non-2xx for 24 h", 7),
)
CHECK_RETRY_SLOW = CheckDef(
    "retry-after-timeout",
    SHOULD,
    "Retried after a slow response",
    "The callback answered slowly on purpose (past common ESP timeouts) is delivered again; the "
    "delay is reported. A vendor that waited for the answer had no reason to retry, so a missing "
    "retry is NON-STRICT.",
    reading("SendGrid retries non-2xx for 24 h", 7),
)
CHECK_SMTP_ACCEPTED = CheckDef(
    "smtp-accepted",
    MUST,
    "Probes accepted over SMTP",
    "The vendor's SMTP server accepts every probe message; outcomes are reported by callback.",
    page(
        "CleverTap supports integrating any Email Service Provider (ESP) using the SMTP protocol"
        " to send Email campaigns."
    ),
)
CHECK_DEADLINE = CheckDef(
    "all-events-by-deadline",
    MUST,
    "All expected events within the deadline",
    "Every probe that must trigger a failure event has one arrive before the plan's deadline. "
    "Never arrived: MISSING; arrived late: FAIL.",
    page(
        "To handle bounced email messages, you must make an HTTP request to the callback URL"
        " specified under the Setup tab of Settings > Channels > Email page on the CleverTap"
        " dashboard."
    ),
)
CHECK_SUCCESS_EVENTS = CheckDef(
    "success-events",
    INFO,
    "Delivered events reported (informational)",
    "Whether the vendor reports deliveries in `events.success`; optional in the protocol.",
    reading('An optional `events.success` list of `{"type": "delivered", ...}`', 3),
)
CHECK_LATENCY = CheckDef(
    "arrival-latency",
    INFO,
    "Callback latency (informational)",
    "Time from sending each probe to its first callback.",
    decision(
        "Callback latency is measured and reported, never graded: neither the page nor"
        " PROTOCOL.md sets a bound.",
        CERTIFICATION_DOC,
    ),
)

CHECKS: tuple[CheckDef, ...] = (
    CHECK_BODY_JSON_V2,
    CHECK_EVENTS_FAILED,
    CHECK_MAX_EVENTS,
    CHECK_META_EXACT,
    CHECK_RELAYED_META,
    CHECK_TYPE,
    CHECK_EMAIL,
    CHECK_DESCRIPTION,
    CHECK_CONTENT_TYPE,
    CHECK_NO_DUPLICATES,
    CHECK_RETRY_500,
    CHECK_RETRY_SLOW,
    CHECK_SMTP_ACCEPTED,
    CHECK_DEADLINE,
    CHECK_SUCCESS_EVENTS,
    CHECK_LATENCY,
)

# Verdict strings used in summaries and evidence notes.
NO_CALLBACKS = "no callback arrived"
NOT_PROBED_500 = 'the plan has no probe with respond = "500"'
NOT_PROBED_SLOW = 'the plan has no probe with respond = "slow"'
PROBE_NOT_APPLIED = (
    "no callback of this probe got the planned answer (its meta was not exact, or the call already "
    "carried another probe's answer)"
)
NO_RETRY = "no later delivery of the event came"
LEGACY_BOUNCE = "legacy type 'bounce' for a hard bounce"
NOTHING_SENT_TO_WAIT_FOR = (
    "no event could be waited for: every probe meant to trigger one was refused over SMTP"
    " (see smtp-accepted)"
)
NO_RELAY_PROBE = "the plan has no probe with relay_fold = true"
NO_FAILURE_PROBE = "the plan has no probe that must trigger a failure event"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One fact behind a grade: which request (by `seq`), which probe, and what was seen."""

    grade: str
    note: str
    callback_seq: int | None = None
    probe_id: str | None = None
    expected: str | None = None
    actual: str | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One graded check, with the provenance of its requirement for every report to show."""

    id: str
    level: str
    title: str
    meaning: str
    grade: str
    summary: str
    provenance: Provenance
    evidence: tuple[Evidence, ...] = ()
    measurements: dict[str, float] = field(default_factory=dict)

    @property
    def failure_message(self) -> str:
        """The one line a failure is reported with: grade, summary, and where the rule is from."""
        return f"{self.id} ({self.level}) {self.grade}: {self.summary}; rule: {self.provenance}"


@dataclass(frozen=True, slots=True)
class _Event:
    """One event of one callback, with the probe it was attributed to (if any)."""

    callback: Callback
    group: str
    position: int
    data: dict[str, Any]
    probe: SentProbe | None
    exact: bool

    @property
    def meta(self) -> object:
        return self.data.get("meta")

    @property
    def key(self) -> tuple[str, str, object]:
        assert self.probe is not None
        return (self.probe.id, self.group, self.data.get("type"))


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    seconds: float
    seq: int
    status: int
    events: int
    injected: str | None


@dataclass(frozen=True, slots=True)
class Certification:
    plan_name: str
    started_at: float
    deadline_at: float
    checks: tuple[CheckResult, ...]
    probes: tuple[SentProbe, ...]
    callbacks: tuple[Callback, ...]
    timeline: tuple[TimelinePoint, ...]

    @property
    def passed(self) -> bool:
        """Certified when no MUST check failed or is missing; SHOULD misses never block."""
        return not any(c.level == MUST and c.grade in FAILING for c in self.checks)

    def check(self, check_id: str) -> CheckResult:
        return next(c for c in self.checks if c.id == check_id)


def normalise_meta(value: str) -> str:
    """Undo what mail transport commonly does to a header value: RFC 2047 words, folding spaces."""
    text = value
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except (HeaderParseError, UnicodeError, LookupError, ValueError):
            text = value
    return "".join(text.split())


def describe_mismatch(sent: str, got: str) -> str:
    """Say how a received meta differs from the one sent, in the words a vendor needs to fix it."""
    if got.strip() == sent:
        return "surrounding whitespace added (a folded header unfolded with its leading space)"
    if "=?" in got:
        return "RFC 2047 encoded-word(s) left in the value instead of the raw header text"
    if "".join(got.split()) == sent:
        return "whitespace inserted (header folding not undone)"
    if sent.startswith(got):
        return f"truncated to {len(got)} of {len(sent)} characters"
    return "differs from the meta sent"


def _decode(callback: Callback) -> tuple[Any, str | None]:
    """The body as a JSON value: key order and whitespace are gone, `NaN`/`Infinity` refused."""
    try:
        return RFC_8259.decode(callback.body.decode("utf-8")), None
    except UnicodeDecodeError:
        return None, "body is not UTF-8"
    except (ValueError, RecursionError) as exc:
        return None, f"body is not JSON ({exc})"


def _events(
    callback: Callback, document: Any, exact: dict[str, SentProbe], loose: dict[str, SentProbe]
) -> list[_Event]:
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, dict):
        return []
    found: list[_Event] = []
    position = 0
    for group, items in events.items():
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict):
                position += 1
                continue
            meta = item.get("meta")
            probe = exact.get(meta) if isinstance(meta, str) else None
            is_exact = probe is not None
            if probe is None and isinstance(meta, str):
                probe = loose.get(normalise_meta(meta))
            found.append(_Event(callback, group, position, item, probe, is_exact))
            position += 1
    return found


def _worst(grades: Iterable[str], default: str = PASS) -> str:
    return max(grades, key=_SEVERITY.__getitem__, default=default)


def _result(
    check: CheckDef,
    evidence: Sequence[Evidence],
    summary: str,
    *,
    grade: str | None = None,
    measurements: dict[str, float] | None = None,
) -> CheckResult:
    worst = grade or _worst(e.grade for e in evidence)
    if check.level == SHOULD and worst == FAIL:
        worst = NON_STRICT
    if check.level == INFO and worst != PASS:
        worst = INFORMATIONAL
    return CheckResult(
        check.id,
        check.level,
        check.title,
        check.meaning,
        worst,
        summary,
        check.provenance,
        tuple(evidence),
        measurements or {},
    )


def _count(items: Sequence[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _per_event_result(
    check: CheckDef, evidence: Sequence[Evidence], wrong_phrase: str, ok_phrase: str
) -> CheckResult:
    """A check graded event by event: MISSING when no attributable event arrived at all."""
    if not evidence:
        return _result(check, [], "no attributable event arrived", grade=MISSING)
    wrong = [e for e in evidence if e.grade == FAIL]
    return _result(
        check,
        evidence,
        f"{_count(wrong, 'event')} {wrong_phrase}"
        if wrong
        else f"{_count(evidence, 'event')} checked, {ok_phrase}",
    )


def _envelope_checks(
    posts: Sequence[Callback], documents: dict[int, Any], errors: dict[int, str]
) -> list[CheckResult]:
    body_evidence: list[Evidence] = []
    group_evidence: list[Evidence] = []
    size_evidence: list[Evidence] = []
    totals: list[int] = []
    for callback in posts:
        seq = callback.seq
        if seq in errors:
            body_evidence.append(Evidence(FAIL, errors[seq], seq))
            continue
        document = documents[seq]
        if not isinstance(document, dict):
            body_evidence.append(Evidence(FAIL, "body is JSON but not an object", seq))
            continue
        version = document.get("version")
        if version != VERSION:
            body_evidence.append(Evidence(FAIL, f"version is {version!r}, not 'v2'", seq))
        events = document.get("events")
        if not isinstance(events, dict):
            group_evidence.append(Evidence(FAIL, f"`events` is {type(events).__name__}", seq))
            continue
        bad = [k for k in (FAILED, SUCCESS) if k in events and not isinstance(events[k], list)]
        for key in bad:
            group_evidence.append(Evidence(FAIL, f"`events.{key}` is not a list", seq))
        if FAILED not in events and SUCCESS not in events:
            group_evidence.append(
                Evidence(FAIL, f"no `failed` group; groups sent: {sorted(events)}", seq)
            )
        for key, items in events.items():
            if key == FAILED or not isinstance(items, list):
                continue
            misplaced = [
                i for i in items if isinstance(i, dict) and i.get("type") not in (DELIVERED, None)
            ]
            if misplaced:
                group_evidence.append(
                    Evidence(FAIL, f"{len(misplaced)} failure event(s) under `events.{key}`", seq)
                )
        total = sum(len(v) for v in events.values() if isinstance(v, list))
        if total > MAX_EVENTS:
            size_evidence.append(Evidence(FAIL, f"{total} events in one call", seq))
        totals.append(total)
    if not posts:
        return [
            _result(CHECK_BODY_JSON_V2, [], NO_CALLBACKS, grade=MISSING),
            _result(CHECK_EVENTS_FAILED, [], NO_CALLBACKS, grade=MISSING),
            _result(CHECK_MAX_EVENTS, [], NO_CALLBACKS, grade=MISSING),
        ]
    largest = max(totals, default=0)
    return [
        _result(
            CHECK_BODY_JSON_V2,
            body_evidence,
            f"{len(body_evidence)} of {_count(posts, 'callback')} not JSON v2"
            if body_evidence
            else f"all {_count(posts, 'callback')} are JSON v2",
        ),
        _result(
            CHECK_EVENTS_FAILED,
            group_evidence,
            f"{len(group_evidence)} problem(s) in event grouping"
            if group_evidence
            else "every callback groups its events under `failed`/`success`",
        ),
        _result(
            CHECK_MAX_EVENTS,
            size_evidence,
            f"{_count(size_evidence, 'call')} over {MAX_EVENTS} events"
            if size_evidence
            else f"largest call: {largest} events",
            measurements={"largest_call": float(largest)},
        ),
    ]


def _meta_check(events: Sequence[_Event], probes: Sequence[SentProbe]) -> CheckResult:
    """Byte-exact echo of every meta but the relay-folded ones (`_relay_check` grades those)."""
    events = [e for e in events if e.probe is None or not e.probe.relay_fold]
    probes = [p for p in probes if not p.relay_fold]
    if not events:
        return _result(CHECK_META_EXACT, [], "no event arrived", grade=MISSING)
    evidence: list[Evidence] = []
    seen: dict[str, _Event] = {}
    for event in events:
        meta = event.meta
        seq = event.callback.seq
        if not isinstance(meta, str):
            evidence.append(Evidence(FAIL, f"`meta` is {type(meta).__name__}, not a string", seq))
        elif event.exact:
            assert event.probe is not None
            seen.setdefault(event.probe.id, event)
        elif event.probe is not None:
            evidence.append(
                Evidence(
                    FAIL,
                    f"{describe_mismatch(event.probe.meta, meta)}; sent {len(event.probe.meta)} "
                    f"characters, received {len(meta)}",
                    seq,
                    event.probe.id,
                    event.probe.meta,
                    meta,
                )
            )
        else:
            evidence.append(Evidence(FAIL, "matches no meta that was sent", seq, None, None, meta))
    for probe_id, event in seen.items():
        probe = event.probe
        assert probe is not None
        evidence.append(
            Evidence(
                PASS,
                f"exact ({len(probe.meta)} characters); message to {probe.to}",
                event.callback.seq,
                probe_id,
                probe.meta,
                probe.meta,
            )
        )
    failures = sum(1 for e in evidence if e.grade == FAIL)
    long_sent = [p for p in probes if len(p.meta) > 78]
    long_exact = [p for p in long_sent if p.id in seen]
    summary = (
        f"{failures} event(s) with a wrong meta"
        if failures
        else f"all {_count(events, 'event')} exact"
    )
    summary += f"; long metas (>78) back exact: {len(long_exact)} of {len(long_sent)}"
    return _result(CHECK_META_EXACT, evidence, summary)


def _relay_check(events: Sequence[_Event], probes: Sequence[SentProbe]) -> CheckResult:
    """A meta a relay folded comes back whole: the folding whitespace removed, nothing else."""
    relayed = [p for p in probes if p.relay_fold and p.send_error is None]
    if not relayed:
        return _result(CHECK_RELAYED_META, [], NO_RELAY_PROBE, grade=INFORMATIONAL)
    evidence: list[Evidence] = []
    for event in events:
        probe = event.probe
        if probe is None or not probe.relay_fold:
            continue
        got = event.meta if isinstance(event.meta, str) else repr(event.meta)
        if event.exact:
            note = f"whole ({len(probe.meta)} characters)"
            evidence.append(Evidence(PASS, note, event.callback.seq, probe.id, probe.meta, got))
        else:
            note = f"{describe_mismatch(probe.meta, got)}; sent {len(probe.meta)} characters"
            evidence.append(Evidence(FAIL, note, event.callback.seq, probe.id, probe.meta, got))
    if not evidence:
        return _result(
            CHECK_RELAYED_META, [], "no event of a relay-folded probe arrived", grade=MISSING
        )
    broken = sum(1 for e in evidence if e.grade == FAIL)
    return _result(
        CHECK_RELAYED_META,
        evidence,
        f"{_count(evidence, 'event')} of relay-folded metas, {broken} not whole"
        if broken
        else f"all {_count(evidence, 'event')} of relay-folded metas whole",
    )


def _type_check(events: Sequence[_Event]) -> CheckResult:
    evidence: list[Evidence] = []
    for event in events:
        probe = event.probe
        if probe is None:
            continue
        kind = event.data.get("type")
        seq = event.callback.seq
        if event.group == SUCCESS:
            if kind == DELIVERED and probe.expect != DELIVERED:
                evidence.append(
                    Evidence(
                        INFORMATIONAL,
                        "delivered reported before the outcome",
                        seq,
                        probe.id,
                        probe.expect,
                        str(kind),
                    )
                )
            elif kind != DELIVERED:
                evidence.append(
                    Evidence(FAIL, "unknown success type", seq, probe.id, DELIVERED, str(kind))
                )
            continue
        if kind == probe.expect:
            evidence.append(Evidence(PASS, "as expected", seq, probe.id, probe.expect, kind))
        elif kind == BOUNCE and probe.expect == HARD_BOUNCE:
            evidence.append(Evidence(NON_STRICT, LEGACY_BOUNCE, seq, probe.id, probe.expect, kind))
        else:
            evidence.append(
                Evidence(FAIL, f"reported {kind!r}", seq, probe.id, probe.expect, str(kind))
            )
    return _per_event_result(CHECK_TYPE, evidence, "with the wrong type", "types as expected")


def _email_check(events: Sequence[_Event]) -> CheckResult:
    evidence: list[Evidence] = []
    for event in events:
        probe = event.probe
        if probe is None:
            continue
        email = event.data.get("email")
        seq = event.callback.seq
        if email == probe.to:
            evidence.append(Evidence(PASS, "recipient", seq, probe.id, probe.to, email))
        elif isinstance(email, str) and email.lower() == probe.to.lower():
            evidence.append(
                Evidence(NON_STRICT, "differs in letter case", seq, probe.id, probe.to, email)
            )
        else:
            evidence.append(
                Evidence(
                    FAIL,
                    "not the recipient of this meta's message",
                    seq,
                    probe.id,
                    probe.to,
                    str(email),
                )
            )
    return _per_event_result(CHECK_EMAIL, evidence, "with a wrong email", "emails match")


def _description_check(events: Sequence[_Event]) -> CheckResult:
    failures = [e for e in events if e.group != SUCCESS]
    if not failures:
        return _result(CHECK_DESCRIPTION, [], "no failure event arrived", grade=MISSING)
    evidence = [
        Evidence(
            FAIL,
            "no description" if "description" not in e.data else "description empty or not text",
            e.callback.seq,
            e.probe.id if e.probe else None,
        )
        for e in failures
        if not (isinstance(e.data.get("description"), str) and e.data["description"].strip())
    ]
    return _result(
        CHECK_DESCRIPTION,
        evidence,
        f"{len(evidence)} of {_count(failures, 'failure event')} without a description"
        if evidence
        else f"all {_count(failures, 'failure event')} have one",
    )


def _content_type_check(posts: Sequence[Callback]) -> CheckResult:
    if not posts:
        return _result(CHECK_CONTENT_TYPE, [], NO_CALLBACKS, grade=MISSING)
    evidence: list[Evidence] = []
    for callback in posts:
        value = callback.header("Content-Type") or ""
        media = value.split(";", 1)[0].strip().lower()
        if media != JSON_MEDIA_TYPE and not (
            media.startswith("application/") and media.endswith("+json")
        ):
            evidence.append(Evidence(FAIL, f"Content-Type: {value or '(none)'}", callback.seq))
    return _result(
        CHECK_CONTENT_TYPE,
        evidence,
        f"{len(evidence)} of {_count(posts, 'callback')} not JSON"
        if evidence
        else f"all {_count(posts, 'callback')} sent as JSON",
    )


def _delivery_failed(callback: Callback) -> bool:
    return not 200 <= callback.status < 300 or callback.injected == RESPOND_SLOW


def _duplicate_check(events: Sequence[_Event]) -> CheckResult:
    failed_before: dict[tuple[str, str, object], bool] = {}
    evidence: list[Evidence] = []
    for event in events:
        if event.probe is None:
            continue
        key = event.key
        if key in failed_before and not failed_before[key]:
            evidence.append(
                Evidence(
                    FAIL,
                    f"{event.data.get('type')} sent again though its earlier delivery succeeded",
                    event.callback.seq,
                    event.probe.id,
                )
            )
        failed_before[key] = _delivery_failed(event.callback)
    return _result(
        CHECK_NO_DUPLICATES,
        evidence,
        f"{_count(evidence, 'unprompted duplicate')}" if evidence else "no unprompted duplicate",
    )


def _retry_check(
    check: CheckDef, action: str, events: Sequence[_Event], probes: Sequence[SentProbe]
) -> CheckResult:
    probe = next((p for p in probes if p.respond == action), None)
    if probe is None:
        note = NOT_PROBED_500 if action == RESPOND_500 else NOT_PROBED_SLOW
        return _result(check, [], note, grade=INFORMATIONAL)
    calls: list[Callback] = []
    for event in events:
        if event.probe is probe and event.callback not in calls:
            calls.append(event.callback)
    if not calls:
        return _result(
            check,
            [Evidence(MISSING, "the probe's event never arrived", None, probe.id)],
            f"probe {probe.id}: no callback, nothing to retry",
        )
    probed = next((i for i, call in enumerate(calls) if call.injected == action), None)
    if probed is None:
        return _result(
            check,
            [Evidence(INFORMATIONAL, PROBE_NOT_APPLIED, calls[0].seq, probe.id)],
            PROBE_NOT_APPLIED,
            grade=INFORMATIONAL,
        )
    first = calls[probed]
    if probed == len(calls) - 1:
        answered = "500" if action == RESPOND_500 else "a slow response"
        return _result(
            check,
            [Evidence(FAIL, f"answered with {answered}; {NO_RETRY}", first.seq, probe.id)],
            f"probe {probe.id}: {NO_RETRY}",
        )
    retry = calls[probed + 1]
    delay = retry.arrived_at - first.arrived_at
    return _result(
        check,
        [
            Evidence(PASS, f"first delivery answered {first.status}", first.seq, probe.id),
            Evidence(PASS, f"retried after {delay:.1f} s", retry.seq, probe.id),
        ],
        f"probe {probe.id}: retried after {delay:.1f} s",
        measurements={"retry_delay_seconds": round(delay, 3)},
    )


def _smtp_check(probes: Sequence[SentProbe]) -> CheckResult:
    evidence = [
        Evidence(FAIL, p.send_error, None, p.id) for p in probes if p.send_error is not None
    ]
    return _result(
        CHECK_SMTP_ACCEPTED,
        evidence,
        f"{len(evidence)} of {_count(probes, 'probe')} refused"
        if evidence
        else f"all {_count(probes, 'probe')} accepted",
    )


def _deadline_check(
    events: Sequence[_Event], probes: Sequence[SentProbe], deadline_at: float
) -> CheckResult:
    first_arrival: dict[str, _Event] = {}
    for event in events:
        if event.probe is not None and event.group != SUCCESS:
            first_arrival.setdefault(event.probe.id, event)
    expected = [p for p in probes if p.expect != DELIVERED and p.send_error is None]
    evidence: list[Evidence] = []
    for probe in expected:
        event = first_arrival.get(probe.id)
        if event is None:
            evidence.append(Evidence(MISSING, f"no {probe.expect} event arrived", None, probe.id))
        elif event.callback.arrived_at > deadline_at:
            late = event.callback.arrived_at - deadline_at
            evidence.append(
                Evidence(
                    FAIL, f"arrived {late:.1f} s after the deadline", event.callback.seq, probe.id
                )
            )
    if not expected:
        # Nothing was waited for: passing here would certify a run that proved nothing.
        wanted = [p for p in probes if p.expect != DELIVERED]
        return _result(
            CHECK_DEADLINE,
            [],
            NOTHING_SENT_TO_WAIT_FOR if wanted else NO_FAILURE_PROBE,
            grade=MISSING if wanted else INFORMATIONAL,
            measurements={"expected": 0.0, "arrived": 0.0},
        )
    missing = sum(1 for e in evidence if e.grade == MISSING)
    late = sum(1 for e in evidence if e.grade == FAIL)
    arrived = len(expected) - missing
    summary = f"{arrived} of {len(expected)} expected events arrived"
    if missing:
        summary += f", {missing} missing"
    if late:
        summary += f", {late} late"
    return _result(
        CHECK_DEADLINE,
        evidence,
        summary,
        measurements={"expected": float(len(expected)), "arrived": float(arrived)},
    )


def _success_check(events: Sequence[_Event], probes: Sequence[SentProbe]) -> CheckResult:
    delivered = {e.probe.id for e in events if e.group == SUCCESS and e.probe is not None}
    wanted = [p for p in probes if p.expect == DELIVERED]
    return _result(
        CHECK_SUCCESS_EVENTS,
        [],
        f"delivered events for {len(delivered & {p.id for p in wanted})} of "
        f"{_count(wanted, 'delivered probe')}",
        grade=INFORMATIONAL,
    )


def _latency_check(events: Sequence[_Event]) -> CheckResult:
    first: dict[str, float] = {}
    for event in events:
        if event.probe is not None and event.probe.id not in first:
            first[event.probe.id] = event.callback.arrived_at - event.probe.sent_at
    if not first:
        return _result(CHECK_LATENCY, [], "no attributable event arrived", grade=INFORMATIONAL)
    values = sorted(first.values())
    measurements = {
        "min_seconds": round(values[0], 3),
        "median_seconds": round(statistics.median(values), 3),
        "max_seconds": round(values[-1], 3),
    }
    return _result(
        CHECK_LATENCY,
        [],
        f"first callback per probe: min {values[0]:.1f} s, median "
        f"{statistics.median(values):.1f} s, max {values[-1]:.1f} s",
        grade=INFORMATIONAL,
        measurements=measurements,
    )


def grade(
    recording: Recording, *, deadline_at: float, plan_name: str | None = None
) -> Certification:
    """Grade every check from the sent probes and the callbacks that arrived.

    Pure: the same recording and deadline always give the same result, so a saved capture can be
    re-graded anywhere.
    """
    probes = recording.probes
    exact = {p.meta: p for p in probes}
    loose: dict[str, SentProbe] = {}
    for probe in probes:
        loose.setdefault(normalise_meta(probe.meta), probe)
    posts = sorted(
        (c for c in recording.callbacks if c.method == "POST"), key=lambda c: (c.arrived_at, c.seq)
    )
    documents: dict[int, Any] = {}
    errors: dict[int, str] = {}
    events: list[_Event] = []
    for callback in posts:
        document, error = _decode(callback)
        if error is not None:
            errors[callback.seq] = error
            continue
        documents[callback.seq] = document
        events.extend(_events(callback, document, exact, loose))
    started_at = (
        recording.run.started_at
        if recording.run is not None
        else min((p.sent_at for p in probes), default=0.0)
    )
    checks = [
        *_envelope_checks(posts, documents, errors),
        _meta_check(events, probes),
        _relay_check(events, probes),
        _type_check(events),
        _email_check(events),
        _description_check(events),
        _content_type_check(posts),
        _duplicate_check(events),
        _retry_check(CHECK_RETRY_500, RESPOND_500, events, probes),
        _retry_check(CHECK_RETRY_SLOW, RESPOND_SLOW, events, probes),
        _smtp_check(probes),
        _deadline_check(events, probes, deadline_at),
        _success_check(events, probes),
        _latency_check(events),
    ]
    per_call = Counter(e.callback.seq for e in events)
    timeline = tuple(
        TimelinePoint(
            round(c.arrived_at - started_at, 3), c.seq, c.status, per_call[c.seq], c.injected
        )
        for c in posts
    )
    name = plan_name or (recording.run.plan_name if recording.run else "certification")
    return Certification(
        name, started_at, deadline_at, tuple(checks), probes, tuple(posts), timeline
    )
