"""The size limits of every unbounded input the platform side reads (PROTOCOL.md section 3).

A callback body may be megabytes long and a preference link is any URL anyone can write, so every
field is bounded before it is checked: a value over its limit is refused as that field's fault
(the event is unprocessed with that field's `errorDescription`, a link gets the invalid-link
page), never parsed. The limits are generous for real traffic and each is a multiple of what the
protocol's own values need, so no real callback meets one:

- a meta is a recipient (at most 320 characters as an event's email) plus six short fields and a
  label; 8192 characters leave the label about 7,800, where real labels are tens of characters;
- an event's email follows RFC 5321's path limit, as the event check always has;
- a description is an ESP's free text, usually an SMTP diagnostic of a few hundred characters;
- the integer fields of a meta are 64-bit, so 20 characters hold any valid one with its sign.

Every check behind these limits is linear in the length it reads, which is what makes a limit this
generous safe (bench/adversarial.py measures it). Pure constants, no I/O.
"""

from __future__ import annotations

__all__ = [
    "MAX_DEPTH",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_EMAIL_LENGTH",
    "MAX_EVENTS",
    "MAX_INTEGER_LENGTH",
    "MAX_META_LENGTH",
    "MAX_SIGNATURE_LENGTH",
]

MAX_META_LENGTH = 8192
"""Characters in a meta value, the trailing pipe included."""

MAX_EMAIL_LENGTH = 320
"""Characters in an event's `email` (RFC 5321: 64 for the local part, 255 for the domain)."""

MAX_DESCRIPTION_LENGTH = 65536
"""Characters in an event's `description`."""

MAX_INTEGER_LENGTH = 20
"""Characters in a meta's integer field: 19 digits of a 64-bit integer and a sign."""

MAX_SIGNATURE_LENGTH = 32 + 1 + 43
"""Characters in a preference link's `sig`: a key id, a dot and an unpadded base64 SHA-256."""

MAX_EVENTS = 1000
"""Events in one callback, `failed` and `success` together (the vendor's page)."""

MAX_DEPTH = 64
"""JSON nesting levels in a callback body: real callbacks nest four."""
