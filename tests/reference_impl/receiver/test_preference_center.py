"""The preference center through a real server (issue 12): only a signed link changes a profile,
the page cannot be framed, a browser's cross-site post is refused, RFC 8058 one-click works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from reference_impl.protocol.links import LinkKey, sign_meta
from reference_impl.receiver import preferences
from reference_impl.receiver.server import RunningReceiver, running_receiver
from tests.reference_impl.receiver.openapi_check import OpenAPIChecked
from tests.reference_impl.strategies import envelope

KEY = LinkKey("k2", b"new-secret-0123456789")
OLD = LinkKey("k1", b"old-secret-0123456789")
META = "pat@example.com|1568798080|1730714617|20241104|2|spring|-99|"
ONE_CLICK = {
    "content": b"List-Unsubscribe=One-Click",
    "headers": {"content-type": "application/x-www-form-urlencoded"},
}
# The finding: an unsigned link anyone could write unsubscribed any address for good.
FORGED_VICTIM = "ceo@victim.example|1568798080|1730714617|20241104|0|wzrk_default|1|"


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[RunningReceiver]:
    with running_receiver(tmp_path / "rx.sqlite3", link_keys=(KEY, OLD)) as running:
        yield running


@pytest.fixture
def api(keyed: RunningReceiver) -> Iterator[OpenAPIChecked]:
    client = OpenAPIChecked(keyed.url)
    yield client
    client.close()


def link(meta: str, key: LinkKey = KEY) -> dict[str, str]:
    return {"meta": meta, "sig": sign_meta(meta, key)}


def stored(api: OpenAPIChecked) -> dict[str, int]:
    return api.request("GET", "/healthz").json()["counts"]


def profile_status(api: OpenAPIChecked, email: str) -> int:
    path = f"/api/profiles/{email}"
    return api.request("GET", "/api/profiles/{email}", path).status_code


def test_a_signed_link_shows_the_page_with_its_unsubscribe_button(api: OpenAPIChecked) -> None:
    page = api.request("GET", "/preferences", params=link(META))
    assert page.status_code == 200
    assert "pat@example.com receives these emails" in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text


@pytest.mark.parametrize("status_of", ["valid", "unsigned", "bad meta"])
def test_every_page_answer_forbids_framing(api: OpenAPIChecked, status_of: str) -> None:
    """Clickjacking: CSP frame-ancestors 'none' and X-Frame-Options DENY on every answer."""
    params = {"valid": link(META), "unsigned": {"meta": META}, "bad meta": {"meta": "x"}}
    page = api.request("GET", "/preferences", params=params[status_of])
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "same-origin"


def test_one_click_unsubscribe_is_recorded_once_and_dedups_with_the_esp(
    api: OpenAPIChecked,
) -> None:
    """RFC 8058: a mail client's POST (no cookie, no Origin, no Sec-Fetch-Site) unsubscribes; the
    ESP's later report of it raises nothing new."""
    first = api.request("POST", "/preferences", params=link(META), **ONE_CLICK)
    assert first.status_code == 200
    assert "is unsubscribed" in first.text
    assert not first.headers.get("set-cookie")
    api.request("POST", "/preferences", params=link(META), **ONE_CLICK)
    reported = {"type": "unsubscribed", "email": "pat@example.com", "meta": META}
    api.request("POST", "/callback", content=envelope([reported]))
    events = api.request("GET", "/api/events").json()["events"]
    assert [(e["name"], e["properties"]["reason"]) for e in events] == [
        ("Channel Unsubscribed", "Unsubscribed at the preference center (RFC 8058 one-click)")
    ]
    profile = api.request("GET", "/api/profiles/{email}", "/api/profiles/pat@example.com").json()
    assert profile["subscribed"] is False
    report = api.request("GET", "/api/campaigns/{message_id}", "/api/campaigns/-99").json()
    assert (report["counts"]["unsubscribed"], report["duplicates_ignored"]) == (1, 2)


def test_a_link_signed_with_a_rotated_out_key_still_verifies_while_it_is_kept(
    api: OpenAPIChecked,
) -> None:
    page = api.request("POST", "/preferences", params=link(META, OLD), **ONE_CLICK)
    assert (page.status_code, "is unsubscribed" in page.text) == (200, True)


def forged_links() -> dict[str, dict[str, str]]:
    other = META.replace("pat@", "someone@")
    stranger = LinkKey("k2", b"not-the-receivers-secret")
    return {
        "the finding's unsigned link": {"meta": FORGED_VICTIM},
        "empty sig": {"meta": FORGED_VICTIM, "sig": ""},
        "another meta's signature": {"meta": FORGED_VICTIM, "sig": sign_meta(other, KEY)},
        "a known key id, another secret": link(FORGED_VICTIM, stranger),
        "an unknown key id": link(FORGED_VICTIM, LinkKey("k9", b"0123456789abcdef")),
        "a truncated signature": {"meta": FORGED_VICTIM, "sig": link(FORGED_VICTIM)["sig"][:-1]},
        "a giant signature": {"meta": FORGED_VICTIM, "sig": "k2." + "A" * 10_000},
    }


@pytest.mark.parametrize("case", sorted(forged_links()))
def test_an_unsigned_or_forged_link_is_refused_with_403_and_nothing_stored(
    api: OpenAPIChecked, case: str
) -> None:
    params = forged_links()[case]
    for method in ("GET", "POST"):
        page = api.request(method, "/preferences", params=params, **ONE_CLICK)
        assert page.status_code == 403
        assert "not signed, or its signature does not match" in page.text
    assert stored(api)["callbacks"] == 0
    assert profile_status(api, "ceo@victim.example") == 404


def test_without_a_link_key_every_link_is_refused_and_says_why(receiver: RunningReceiver) -> None:
    """Decision: a receiver with no key cannot verify a link, so it changes nothing."""
    client = OpenAPIChecked(receiver.url)
    for params in ({"meta": META}, link(META)):
        page = client.request("POST", "/preferences", params=params, **ONE_CLICK)
        assert page.status_code == 403
        assert "has no link key" in page.text
    assert client.request("GET", "/healthz").json()["counts"]["callbacks"] == 0
    client.close()


CROSS_SITE = {
    "Sec-Fetch-Site cross-site": {"sec-fetch-site": "cross-site"},
    "Origin of another host": {"origin": "https://evil.example"},
    "Origin of another port": {"origin": "http://127.0.0.1:1"},
    "Origin null (sandboxed frame)": {"origin": "null"},
}


@pytest.mark.parametrize("case", sorted(CROSS_SITE))
def test_a_browsers_cross_site_post_is_refused_even_with_a_valid_link(
    api: OpenAPIChecked, case: str
) -> None:
    headers = {**ONE_CLICK["headers"], **CROSS_SITE[case]}
    page = api.request(
        "POST", "/preferences", params=link(META), content=ONE_CLICK["content"], headers=headers
    )
    assert page.status_code == 403
    assert "posted from another site" in page.text
    assert stored(api)["callbacks"] == 0


def test_the_pages_own_button_posts_same_origin_and_works(
    api: OpenAPIChecked, keyed: RunningReceiver
) -> None:
    same: dict[str, Any] = {"origin": keyed.url, "sec-fetch-site": "same-origin"}
    headers = {**ONE_CLICK["headers"], **same}
    page = api.request(
        "POST", "/preferences", params=link(META), content=ONE_CLICK["content"], headers=headers
    )
    assert (page.status_code, "is unsubscribed" in page.text) == (200, True)


NOT_ONE_CLICK = {
    "no body": {"content": b""},
    "an empty form": {"content": b"", "headers": ONE_CLICK["headers"]},
    "JSON": {"json": {"List-Unsubscribe": "One-Click"}},
    "the pair as text/plain": {
        "content": b"List-Unsubscribe=One-Click",
        "headers": {"content-type": "text/plain"},
    },
    "another value": {"data": {"List-Unsubscribe": "Yes"}},
    "the value twice": {"content": b"List-Unsubscribe=One-Click&List-Unsubscribe=One-Click"}
    | {"headers": ONE_CLICK["headers"]},
    "another field": {"data": {"unsubscribe": "One-Click"}},
}


@pytest.mark.parametrize("case", sorted(NOT_ONE_CLICK))
def test_a_post_whose_body_is_not_the_one_click_pair_is_a_400_and_stores_nothing(
    api: OpenAPIChecked, case: str
) -> None:
    """RFC 8058 section 3.2: the POST's body is `List-Unsubscribe=One-Click`, form-encoded; a
    signed link posted with anything else unsubscribes nobody."""
    page = api.request("POST", "/preferences", params=link(META), **NOT_ONE_CLICK[case])
    assert page.status_code == 400
    assert preferences.NOT_ONE_CLICK in page.text.replace("&#x27;", "'")
    assert stored(api)["callbacks"] == 0
    assert profile_status(api, "pat@example.com") == 404


def test_a_multipart_one_click_post_unsubscribes(api: OpenAPIChecked) -> None:
    """RFC 8058 section 3.2 prefers multipart/form-data; urlencoded is allowed too."""
    files = {"List-Unsubscribe": (None, "One-Click")}
    page = api.request("POST", "/preferences", params=link(META), files=files)
    assert (page.status_code, "is unsubscribed" in page.text) == (200, True)
    assert stored(api)["events"] == 1


def test_the_pages_button_unsubscribes_in_a_real_browser(keyed: RunningReceiver, page: Any) -> None:
    """The page's own form, clicked in Chromium: a same-origin form post of the one-click pair."""
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in link(META).items())
    page.goto(f"{keyed.url}/preferences?{query}")
    assert "pat@example.com receives these emails" in page.content()
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "pat@example.com is unsubscribed from these emails" in page.content()
    assert keyed.store.profile("pat@example.com")["subscribed"] is False


@pytest.mark.parametrize("meta", ["", "not-a-meta", META.replace("20241104", "20241105")])
def test_preference_link_with_a_bad_meta_is_a_clear_400(api: OpenAPIChecked, meta: str) -> None:
    for method in ("GET", "POST"):
        response = api.request(method, "/preferences", params=link(meta))
        assert response.status_code == 400
        assert "not valid" in response.text
    assert stored(api)["callbacks"] == 0


def test_one_click_unsubscribe_works_for_a_quoted_local_part(api: OpenAPIChecked) -> None:
    """RFC 5321 lets a quoted local part hold an `@`; the meta codec and the event check agree."""
    meta = META.replace("pat@example.com", '"pat@home"@example.com')
    page = api.request("POST", "/preferences", params=link(meta), **ONE_CLICK)
    assert page.status_code == 200
    assert "is unsubscribed" in page.text
    assert stored(api)["events"] == 1


@pytest.mark.parametrize("email", ["pat@home@example.com", "p" * 320 + "@example.com"])
def test_preference_link_for_an_address_no_event_can_carry_is_a_clear_400(
    api: OpenAPIChecked, email: str
) -> None:
    """The meta parses, but its recipient is not a valid event `email`: saying so beats logging
    a callback with no event and showing the address as still subscribed."""
    meta = META.replace("pat@example.com", email)
    for method in ("GET", "POST"):
        response = api.request(method, "/preferences", params=link(meta))
        assert response.status_code == 400
        assert "cannot be used" in response.text
    assert stored(api)["callbacks"] == 0


def test_a_custom_preference_center_unsubscribes_through_the_callback_url(
    tmp_path: Path,
) -> None:
    """ "Handle Unsubscriptions": a custom page posts the unsubscribe as a v2 callback with the
    callback token; it needs no link key."""
    with running_receiver(tmp_path / "rx.sqlite3", token="t0k3n") as guarded:
        client = OpenAPIChecked(guarded.url)
        event = {"type": "unsubscribed", "email": "pat@example.com", "meta": META}
        answer = client.request(
            "POST", "/callback/{token}", "/callback/t0k3n", content=envelope([event])
        )
        assert answer.json()["PROCESSED_EVENTS"] == 1
        profile = client.request(
            "GET",
            "/api/profiles/{email}",
            "/api/profiles/pat@example.com",
            headers={"Authorization": "Bearer t0k3n"},
        )
        assert profile.json()["subscribed"] is False
        client.close()


def test_the_refusal_texts_are_named_constants() -> None:
    assert {preferences.NO_LINK_KEYS, preferences.UNVERIFIED_LINK, preferences.CROSS_SITE}
    assert preferences.NOT_ONE_CLICK
