"""The delivery policy (PROTOCOL.md section 7): every answer but a 2xx is retried, splits and
dead letters are the only other ends, and no decision loses a batch's events."""

from __future__ import annotations

from email.utils import formatdate

from hypothesis import given
from hypothesis import strategies as st

from simulator.esp.delivery_policy import (
    CONNECT_ERROR,
    DEAD_LETTER,
    DELIVERED,
    MAX_REDIRECTS,
    REDIRECT,
    RETRY,
    SPLIT,
    TIMEOUT,
    Attempt,
    decide,
    retry_after_seconds,
)

URL = "http://rx.example:8080/callback"
SCHEDULE = (10.0, 20.0)
NOW = 1_000_000.0
UNREADABLE = '{"error": "Exception occurred while reading input stream", "TOTAL_EVENTS": 0}'


def attempt(status: int | None = None, **kwargs: object) -> Attempt:
    fields: dict[str, object] = {"url": URL, "event_count": 4, "attempt": 1, "now": NOW}
    fields.update(kwargs)
    return Attempt(status=status, **fields)  # type: ignore[arg-type]


def test_2xx_is_delivered() -> None:
    for status in (200, 201, 204, 299):
        assert decide(attempt(status), SCHEDULE).action == DELIVERED


def test_5xx_timeouts_and_refused_connections_retry_on_the_schedule() -> None:
    for case in (attempt(500), attempt(503), attempt(error=TIMEOUT), attempt(error=CONNECT_ERROR)):
        decision = decide(case, SCHEDULE)
        assert decision.action == RETRY and decision.at == NOW + 10.0


def test_jitter_scales_the_scheduled_step() -> None:
    assert decide(attempt(500, attempt=2), SCHEDULE, jitter=0.1).at == NOW + 22.0


def test_exhausted_schedule_is_a_dead_letter_naming_the_last_answer() -> None:
    decision = decide(attempt(503, attempt=3), SCHEDULE)
    assert decision.action == DEAD_LETTER
    assert "HTTP 503" in decision.reason and "exhausted after 3" in decision.reason


def test_429_honours_retry_after_in_seconds() -> None:
    decision = decide(attempt(429, headers={"Retry-After": "7"}), SCHEDULE)
    assert decision.action == RETRY and decision.at == NOW + 7.0


def test_429_honours_retry_after_as_an_http_date() -> None:
    when = formatdate(NOW + 90, usegmt=True)
    decision = decide(attempt(429, headers={"retry-after": when}), SCHEDULE)
    assert decision.action == RETRY and decision.at == NOW + 90.0


def test_429_without_a_usable_retry_after_uses_the_schedule() -> None:
    for headers in ({}, {"Retry-After": "soon"}):
        assert decide(attempt(429, headers=headers), SCHEDULE).at == NOW + 10.0


def test_retry_after_in_the_past_means_now_and_a_huge_one_is_capped() -> None:
    assert retry_after_seconds(formatdate(NOW - 50, usegmt=True), NOW) == 0.0
    assert retry_after_seconds("99999999", NOW) == 24 * 3600.0
    assert retry_after_seconds(None, NOW) is None


def test_401_and_403_retry_with_a_credentials_warning() -> None:
    for status in (401, 403):
        decision = decide(attempt(status), SCHEDULE)
        assert decision.action == RETRY
        assert decision.warning is not None and "credentials" in decision.warning


def test_other_4xx_are_retried_like_mailgun_does() -> None:
    for status in (400, 404, 405, 406, 409, 422):
        assert decide(attempt(status, body='{"error": "x"}'), SCHEDULE).action == RETRY


def test_307_and_308_to_the_same_host_are_followed() -> None:
    for status in (307, 308):
        decision = decide(attempt(status, headers={"Location": "/v2/callback"}), SCHEDULE)
        assert decision.action == REDIRECT and decision.url == "http://rx.example:8080/v2/callback"


def test_308_from_http_to_https_on_the_same_host_is_followed() -> None:
    location = {"Location": "https://rx.example/callback"}
    decision = decide(attempt(308, headers=location), SCHEDULE)
    assert decision.action == REDIRECT and decision.url == "https://rx.example/callback"


def test_redirect_to_another_host_or_down_to_http_is_not_followed_and_says_so() -> None:
    cases = [
        attempt(308, headers={"Location": "http://elsewhere.example/callback"}),
        attempt(307, url="https://rx.example/cb", headers={"Location": "http://rx.example/cb"}),
    ]
    for case in cases:
        decision = decide(case, SCHEDULE)
        assert decision.action == RETRY and decision.warning is not None
        assert "not followed" in decision.warning


def test_301_302_303_are_retried_at_the_callback_url_with_a_warning() -> None:
    for status in (301, 302, 303):
        decision = decide(attempt(status, headers={"Location": "/other"}), SCHEDULE)
        assert decision.action == RETRY and "307 and 308" in (decision.warning or "")


def test_a_redirect_without_location_or_past_the_hop_limit_is_retried() -> None:
    assert decide(attempt(308), SCHEDULE).action == RETRY
    looped = attempt(308, headers={"Location": "/cb"}, hops=MAX_REDIRECTS)
    assert decide(looped, SCHEDULE).action == RETRY


def test_413_and_too_many_events_split_the_batch() -> None:
    too_many = '{"error": "More than allowed events received."}'
    assert decide(attempt(413), SCHEDULE).action == SPLIT
    assert decide(attempt(400, body=too_many), SCHEDULE).action == SPLIT


def test_a_single_event_that_is_still_too_large_is_a_dead_letter() -> None:
    decision = decide(attempt(413, event_count=1), SCHEDULE)
    assert decision.action == DEAD_LETTER and "single event" in decision.reason


def test_unreadable_json_400_is_a_permanent_dead_letter_even_on_the_first_attempt() -> None:
    decision = decide(attempt(400, body=UNREADABLE), SCHEDULE)
    assert decision.action == DEAD_LETTER and "unreadable" in decision.reason


answers = st.one_of(
    st.builds(
        dict,
        status=st.integers(100, 599),
        body=st.sampled_from(["", UNREADABLE, "More than allowed events received.", "{}"]),
        headers=st.sampled_from(
            [{}, {"Retry-After": "3"}, {"Location": "/x"}, {"Location": "http://other/x"}]
        ),
    ),
    st.builds(dict, error=st.sampled_from([TIMEOUT, CONNECT_ERROR])),
)


@given(st.lists(answers, min_size=1, max_size=40), st.integers(1, 50))
def test_no_sequence_of_answers_loses_an_event(script: list[dict], events: int) -> None:
    """Every event ends delivered or dead-lettered, or is still scheduled: never dropped.

    Batches are driven through the policy with answers drawn from `script` (then 200s); a SPLIT
    must hand on exactly the events it got, and the walk must end within a bounded number of
    steps, since splits halve and the schedule is finite."""
    pending = [(events, 1, 0)]  # (events in the batch, attempt, hops)
    delivered = dead = 0
    answers_left = list(script)
    steps = 0
    while pending:
        steps += 1
        assert steps < 10_000
        count, number, hops = pending.pop()
        answer = answers_left.pop(0) if answers_left else {"status": 200}
        decision = decide(attempt(event_count=count, attempt=number, hops=hops, **answer), SCHEDULE)
        if decision.action == DELIVERED:
            delivered += count
        elif decision.action == DEAD_LETTER:
            assert decision.reason
            dead += count
        elif decision.action == SPLIT:
            assert count > 1
            pending += [(count // 2, 1, 0), (count - count // 2, 1, 0)]
        elif decision.action == REDIRECT:
            assert decision.url
            pending.append((count, number, hops + 1))
        else:
            assert decision.action == RETRY and decision.at is not None and decision.at >= NOW
            pending.append((count, number + 1, 0))
    assert delivered + dead == events
