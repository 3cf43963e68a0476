"""The callback delivery policy: what the fake ESP does with one answer to one batch (no I/O).

At least once (PROTOCOL.md section 7): every answer but a 2xx is retried, as Mailgun retries every
answer but a 406. A 413 or a 400 `More than allowed events received.` splits the batch; only a 400
saying the JSON is unreadable is permanent, and that batch becomes a dead letter, never dropped.
The dispatcher turns each `Decision` into spool writes; this module only decides, so every branch
is a unit test and "no decision loses an event" is a property.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

__all__ = [
    "CONNECT_ERROR",
    "DEAD_LETTER",
    "DELIVERED",
    "MAX_REDIRECTS",
    "REDIRECT",
    "RETRY",
    "SPLIT",
    "TIMEOUT",
    "Attempt",
    "Decision",
    "decide",
    "retry_after_seconds",
]

DELIVERED = "delivered"
RETRY = "retry"
SPLIT = "split"
REDIRECT = "redirect"
DEAD_LETTER = "dead-letter"

TIMEOUT = "timeout"
CONNECT_ERROR = "connect"

MAX_REDIRECTS = 5
"""Redirects followed within one attempt; past that the attempt counts as failed and is retried."""

MAX_RETRY_AFTER = 24 * 3600.0
"""A Retry-After longer than this is cut to it: SendGrid's whole retry window."""

UNREADABLE_JSON = "Exception occurred while reading input stream"
TOO_MANY_EVENTS = "More than allowed events received."

# The reasons and warnings, one place: the spool stores the reason, the log prints the warning.
REASON_UNREADABLE = "400 unreadable JSON (`" + UNREADABLE_JSON + "`): permanent"
REASON_TOO_LARGE_SINGLE = "HTTP {status} for a single event: it cannot be split further"
REASON_EXHAUSTED = "{what}; retry schedule exhausted after {attempts} attempt(s)"
REASON_SPLIT = "HTTP {status} ({why}): batch of {count} split in halves"
WARN_CREDENTIALS = (
    "HTTP {status}: the receiver refused the credentials; they are likely wrong or rotated"
    " (check the callback URL's token)"
)
WARN_OTHER_HOST = (
    "HTTP {status} redirects to another host or to plain http ({location}): not followed, so"
    " events are not handed to a host the callback URL did not name; fix the callback URL"
)
WARN_NOT_FOLLOWED = (
    "HTTP {status} to {location}: only 307 and 308 keep a POST and its body, so it is retried"
    " at the callback URL instead; point the callback URL at the final address"
)
WARN_TOO_MANY_REDIRECTS = "more than {hops} redirects in one attempt: counted as a failed attempt"
WARN_NO_LOCATION = "HTTP {status} without a Location header: retried"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST of one batch and what came back.

    `status` is None when no answer came (`error` is TIMEOUT or CONNECT_ERROR); `attempt` counts
    this one (1 = first try); `hops` is how many redirects were already followed in it.
    """

    url: str
    event_count: int
    attempt: int
    now: float
    status: int | None = None
    headers: Mapping[str, str] | None = None
    body: str = ""
    error: str | None = None
    hops: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do next. `at` for RETRY, `url` for REDIRECT, `reason` always (stored, shown)."""

    action: str
    reason: str
    at: float | None = None
    url: str | None = None
    warning: str | None = None


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP-date), None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT by definition (RFC 9110 5.6.7)
        return None
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER)


def _header(attempt: Attempt, name: str) -> str | None:
    for key, value in (attempt.headers or {}).items():
        if key.lower() == name:
            return value
    return None


def _same_origin_or_upgrade(current: str, target: str) -> bool:
    """A redirect that stays on the callback URL's host, and never from https to http."""
    here, there = urlsplit(current), urlsplit(target)
    if there.scheme not in ("http", "https") or here.hostname != there.hostname:
        return False
    return not (here.scheme == "https" and there.scheme == "http")


def _retry(
    attempt: Attempt,
    what: str,
    schedule: tuple[float, ...],
    jitter: float,
    warning: str | None = None,
    wait: float | None = None,
) -> Decision:
    """RETRY at the schedule's next step (scaled by `jitter`, a draw in [-j, j]), or at `wait`
    seconds when the receiver said when; DEAD_LETTER once the schedule is spent."""
    if attempt.attempt > len(schedule):
        reason = REASON_EXHAUSTED.format(what=what, attempts=attempt.attempt)
        return Decision(DEAD_LETTER, reason, warning=warning)
    delay = wait if wait is not None else max(0.0, schedule[attempt.attempt - 1] * (1.0 + jitter))
    return Decision(RETRY, what, at=attempt.now + delay, warning=warning)


def decide(attempt: Attempt, schedule: tuple[float, ...], jitter: float = 0.0) -> Decision:
    """The next step for a batch after `attempt`, under the retry `schedule` (seconds)."""
    status = attempt.status
    if status is None:
        what = "timeout" if attempt.error == TIMEOUT else f"no answer ({attempt.error})"
        return _retry(attempt, what, schedule, jitter)
    if 200 <= status < 300:
        return Decision(DELIVERED, f"HTTP {status}")
    what = f"HTTP {status}"
    if status == 400 and UNREADABLE_JSON in attempt.body:
        return Decision(DEAD_LETTER, REASON_UNREADABLE)
    if status == 413 or (status == 400 and TOO_MANY_EVENTS in attempt.body):
        why = "payload too large" if status == 413 else TOO_MANY_EVENTS
        if attempt.event_count <= 1:
            return Decision(DEAD_LETTER, REASON_TOO_LARGE_SINGLE.format(status=status))
        reason = REASON_SPLIT.format(status=status, why=why, count=attempt.event_count)
        return Decision(SPLIT, reason)
    if status == 429:
        wait = retry_after_seconds(_header(attempt, "retry-after"), attempt.now)
        return _retry(attempt, what, schedule, jitter, wait=wait)
    if status in (401, 403):
        return _retry(attempt, what, schedule, jitter, WARN_CREDENTIALS.format(status=status))
    if 300 <= status < 400:
        return _redirect(attempt, schedule, jitter)
    return _retry(attempt, what, schedule, jitter)


def _redirect(attempt: Attempt, schedule: tuple[float, ...], jitter: float) -> Decision:
    status = attempt.status
    what = f"HTTP {status}"
    location = _header(attempt, "location")
    if not location:
        return _retry(attempt, what, schedule, jitter, WARN_NO_LOCATION.format(status=status))
    target = urljoin(attempt.url, location.strip())
    if status not in (307, 308):
        warning = WARN_NOT_FOLLOWED.format(status=status, location=target)
        return _retry(attempt, what, schedule, jitter, warning)
    if not _same_origin_or_upgrade(attempt.url, target):
        warning = WARN_OTHER_HOST.format(status=status, location=target)
        return _retry(attempt, what, schedule, jitter, warning)
    if attempt.hops >= MAX_REDIRECTS:
        warning = WARN_TOO_MANY_REDIRECTS.format(hops=MAX_REDIRECTS)
        return _retry(attempt, what, schedule, jitter, warning)
    return Decision(REDIRECT, f"{what} to {target}", url=target)
