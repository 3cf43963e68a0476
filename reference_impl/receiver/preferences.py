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
CROSS_SITE = (
    "This unsubscribe was posted from another site, so it was refused and nothing was changed."
    " Use the button on this page, or the unsubscribe link of the email itself."
)

# Every answer of the page: it cannot be framed by another site (clickjacking), and the link in
# its URL (meta and signature) is neither cached nor sent on as a Referer.
FRAME_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
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


def page(email: str, subscribed: bool) -> str:
    if not subscribed:
        return _PAGE.format(body=f"<p>{escape(email)} is unsubscribed from these emails.</p>")
    form = (
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _PAGE.format(body=f"<p>{escape(email)} receives these emails.</p>{form}")


def invalid_page(text: str = INVALID_LINK) -> str:
    return _PAGE.format(body=f"<p>{escape(text)}</p>")
