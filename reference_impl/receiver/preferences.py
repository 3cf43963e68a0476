"""The receiver's own preference center (`preference_center = "clevertap"` in a provider file).

The sender points `List-Unsubscribe` at `/preferences?meta=<meta>`. A GET shows the recipient's
state with an unsubscribe button; a POST (the button, or a mail client's RFC 8058 one-click
`List-Unsubscribe=One-Click`) unsubscribes. The unsubscribe goes into the callback log as a
one-event v2 body, an `unsubscribed` event of that meta, so it is projected, deduplicated and
counted exactly like one the ESP reports.

A link changes a profile without a login, so the page acts only on a link it can verify: `sig`,
the sender's HMAC of the meta under one of the receiver's link keys (`protocol.links`). An
unsigned or wrongly signed link gets a 403 page and stores nothing, on GET as on POST; so does
every link while the receiver has no key (it could verify none). The page cannot be framed
(`FRAME_HEADERS`), and a browser's cross-site form post is refused (`access.cross_site`); a mail
client's one-click POST carries neither `Origin` nor `Sec-Fetch-Site`, needs no cookie, and works.

A POST unsubscribes only when its body is the one-click pair `List-Unsubscribe=One-Click`
(`is_one_click`), form-encoded as RFC 8058 section 3.2 has it (`multipart/form-data`, or
`application/x-www-form-urlencoded` as the page's own button sends it). Anything else (an empty
body, JSON, another value) is a 400 page and stores nothing: a POST that does not say "one-click
unsubscribe" was not made by a client acting on the header, and guessing would unsubscribe for
good on a request that never asked.
"""

from __future__ import annotations

import json
from html import escape

from reference_impl.protocol.meta import Meta
from reference_impl.protocol.payload import FAILED, UNSUBSCRIBED, VERSION

ONE_CLICK_DESCRIPTION = "Unsubscribed at the preference center (RFC 8058 one-click)"
INVALID_LINK = "This preferences link is not valid: its meta is missing or malformed."
UNUSABLE_LINK = (
    "This preferences link cannot be used: its recipient address is not one a v2 callback event"
    " can carry, so the unsubscribe could not be recorded."
)

NO_LINK_KEYS = (
    "This receiver has no link key, so it cannot verify any preferences link and changes nothing."
    " Its operator gives it the key the links are signed with:"
    " bounceback receiver --link-key ID=SECRET."
)
UNVERIFIED_LINK = (
    "This preferences link is not signed, or its signature does not match its meta: it may have"
    " been altered or made up. Nothing was changed; use the link from the email itself."
)
# The one key/value pair of an RFC 8058 one-click POST body (List-Unsubscribe-Post's value).
ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
NOT_ONE_CLICK = (
    "This unsubscribe request was refused and nothing was changed: its body is not the one-click"
    " form field List-Unsubscribe=One-Click (RFC 8058), form-encoded. Use the button on this"
    " page, or the unsubscribe link of the email itself."
)
CROSS_SITE = (
    "This unsubscribe was posted from another site, so it was refused and nothing was changed."
    " Use the button on this page, or the unsubscribe link of the email itself."
)

# Every answer of the page: it cannot be framed by another site (clickjacking), and the link in
# its URL (meta and signature) is neither cached nor sent on as a Referer to another site.
# `same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null` with the
# page's own form post, which `cross_site` must refuse (a real Chromium showed it).
FRAME_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Email preferences</title></head>
<body><h1>Email preferences</h1>{body}</body></html>
"""


def unsubscribe_body(meta_value: str, meta: Meta) -> bytes:
    """The v2 callback body that records this unsubscribe in the log."""
    event = {
        "type": UNSUBSCRIBED,
        "email": meta.email,
        "meta": meta_value,
        "description": ONE_CLICK_DESCRIPTION,
    }
    return json.dumps({"version": VERSION, "events": {FAILED: [event]}}).encode()


def is_one_click(values: list[str]) -> bool:
    """True when the form's `List-Unsubscribe` values are exactly one `One-Click` (RFC 8058)."""
    return values == [ONE_CLICK_VALUE]


def page(email: str, subscribed: bool) -> str:
    if not subscribed:
        return _PAGE.format(body=f"<p>{escape(email)} is unsubscribed from these emails.</p>")
    form = (
        f'<form method="post"><input type="hidden" name="{ONE_CLICK_FIELD}"'
        f' value="{ONE_CLICK_VALUE}"><button type="submit">Unsubscribe</button></form>'
    )
    return _PAGE.format(body=f"<p>{escape(email)} receives these emails.</p>{form}")


def invalid_page(text: str = INVALID_LINK) -> str:
    return _PAGE.format(body=f"<p>{escape(text)}</p>")
