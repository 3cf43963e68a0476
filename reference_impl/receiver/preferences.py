"""The receiver's own preference center (`preference_center = "clevertap"` in a provider file).

The sender points `List-Unsubscribe` at `/preferences?meta=<meta>`. A GET shows the recipient's
state with an unsubscribe button; a POST (the button, or a mail client's RFC 8058 one-click
`List-Unsubscribe=One-Click`) unsubscribes. The unsubscribe goes into the callback log as a
one-event v2 body, an `unsubscribed` event of that meta, so it is projected, deduplicated and
counted exactly like one the ESP reports.
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
