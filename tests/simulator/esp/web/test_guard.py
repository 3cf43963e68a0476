"""Issue 15, protection when exposed: the pure checks behind the API's guard."""

from __future__ import annotations

import pytest

from simulator.esp.web.guard import bearer, cross_site, is_loopback, token_matches


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_hosts_need_no_token(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "esp.example", ""])
def test_every_other_host_is_exposed(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    ("fetch_site", "origin", "refused"),
    [
        (None, None, False),  # curl, a test's httpx: neither header
        ("same-origin", "http://127.0.0.1:8026", False),
        ("cross-site", None, True),
        (None, "http://evil.example", True),
        (None, "null", True),  # a sandboxed frame, a redirect through another site
        (None, "http://127.0.0.1:9999", True),  # another port is another origin
        ("none", None, False),  # typed in the address bar
    ],
)
def test_a_page_of_another_site_is_refused(
    fetch_site: str | None, origin: str | None, refused: bool
) -> None:
    assert cross_site(fetch_site, origin, "127.0.0.1:8026") is refused


def test_the_token_is_read_from_a_bearer_header_only() -> None:
    assert bearer("Bearer s3cret") == "s3cret"
    assert bearer("bearer  s3cret ") == "s3cret"
    assert bearer("Basic czNjcmV0") is None
    assert bearer("Bearer ") is None
    assert bearer(None) is None


def test_a_token_matches_only_itself() -> None:
    assert token_matches("s3cret", "s3cret")
    assert not token_matches("s3cre", "s3cret")
    assert not token_matches(None, "s3cret")
