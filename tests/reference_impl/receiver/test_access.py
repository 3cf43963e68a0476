"""Who may read and who may reset (`receiver/access.py`), as pure rules."""

from __future__ import annotations

import pytest

from reference_impl.receiver.access import (
    COOKIE_NAME,
    ExposureError,
    ReadAccess,
    check_exposure,
    cookie_value,
    cross_site,
    is_loopback,
)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.4", False),
        ("receiver.example", False),
    ],
)
def test_only_loopback_addresses_count_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_exposure_needs_a_read_token_or_public_read_beyond_loopback() -> None:
    with pytest.raises(ExposureError, match="--public-read"):
        check_exposure("0.0.0.0", None, public_read=False)
    check_exposure("0.0.0.0", "R", public_read=False)
    check_exposure("0.0.0.0", None, public_read=True)
    check_exposure("127.0.0.1", None, public_read=False)


def test_reads_need_the_token_as_bearer_or_cookie_unless_public() -> None:
    access = ReadAccess("secret")
    assert not access.may_read({}, {})
    assert access.may_read({"Authorization": "Bearer secret"}, {})
    assert not access.may_read({"Authorization": "Bearer secreT"}, {})
    assert access.may_read({}, {COOKIE_NAME: cookie_value("secret")})
    assert not access.may_read({}, {COOKIE_NAME: "secret"}), "the cookie is not the token"
    assert ReadAccess("secret", public_read=True).may_read({}, {})
    assert ReadAccess(None).may_read({}, {})


def test_a_reset_needs_the_token_whenever_one_is_set_and_public_reads_never_open_it() -> None:
    assert not ReadAccess("secret", public_read=True).may_reset({}, {})
    assert ReadAccess("secret", public_read=True).may_reset({"Authorization": "Bearer secret"}, {})
    assert not ReadAccess(None, public_read=True).may_reset({}, {})
    assert ReadAccess(None).may_reset({}, {}), "a loopback receiver with no token resets for tests"


def test_the_cookie_is_derived_from_the_token_and_differs_per_token() -> None:
    assert cookie_value("a") != cookie_value("b")
    assert len(cookie_value("secret")) == 64
    assert "secret" not in cookie_value("secret")


@pytest.mark.parametrize(
    ("fetch_site", "origin", "refused"),
    [
        ("cross-site", None, True),
        (" Cross-Site ", None, True),
        (None, "https://evil.example", True),
        (None, "http://127.0.0.1:1", True),
        (None, "null", True),
        ("same-origin", "http://127.0.0.1:8025", False),
        (None, None, False),
    ],
)
def test_cross_site_is_another_sites_page(
    fetch_site: str | None, origin: str | None, refused: bool
) -> None:
    assert cross_site(fetch_site, origin, "127.0.0.1:8025") is refused
