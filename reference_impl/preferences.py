"""The receiver's own preference center (`preference_center = "clevertap"` in a provider file).

The sender points `List-Unsubscribe` at `/preferences?meta=<meta>`. A GET shows the recipient's
state with an unsubscribe button; a POST (the button, or a mail client's RFC 8058 one-click
`List-Unsubscribe=One-Click`) unsubscribes. The unsubscribe is recorded as an `unsubscribed`
event of that meta, so it is deduplicated with, and counted like, one the ESP reports.
"""

from __future__ import annotations

from html import escape

from reference_impl.meta import Meta
from reference_impl.payload import UNSUBSCRIBED, Batch, CallbackEvent

GROUP = "preferences"
ONE_CLICK_DESCRIPTION = "Unsubscribed at the preference center (RFC 8058 one-click)"
INVALID_LINK = "This preferences link is not valid: its meta is missing or malformed."

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Email preferences</title></head>
<body><h1>Email preferences</h1>{body}</body></html>
"""


def unsubscribe_batch(meta_value: str, meta: Meta) -> Batch:
    event = CallbackEvent(
        0, GROUP, UNSUBSCRIBED, meta.email, meta_value, meta, ONE_CLICK_DESCRIPTION
    )
    return Batch(1, [event], [])


def page(email: str, subscribed: bool) -> str:
    if not subscribed:
        return _PAGE.format(body=f"<p>{escape(email)} is unsubscribed from these emails.</p>")
    form = (
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _PAGE.format(body=f"<p>{escape(email)} receives these emails.</p>{form}")


def invalid_page() -> str:
    return _PAGE.format(body=f"<p>{escape(INVALID_LINK)}</p>")
