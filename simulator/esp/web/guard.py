"""Who may read and who may change: the pure checks behind the app's guard.

The fake ESP's spool holds recipients' addresses, and its controls and reset change a running
test, so an API reachable from other hosts asks for a token, and a browser page of another site
must not be able to drive the controls through a visitor's browser (a cross-site request carries
the visitor's cookie; `Sec-Fetch-Site` and `Origin` say where it came from).
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True when only this machine can reach `host` (127.0.0.0/8, ::1, `localhost`)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison, so the time of a refusal says nothing about the token."""
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def cross_site(sec_fetch_site: str | None, origin: str | None, host: str) -> bool:
    """True for a request a page of another site made: `Sec-Fetch-Site: cross-site`, an `Origin`
    whose host and port are not `host` (the request's `Host`), or `Origin: null` (a sandboxed
    frame, a redirect through another site). A script or curl sends neither, so it passes."""
    if sec_fetch_site is not None and sec_fetch_site.strip().lower() == "cross-site":
        return True
    if origin is None:
        return False
    try:
        netloc = urlsplit(origin.strip()).netloc
    except ValueError:
        return True
    return not netloc or netloc.lower() != host.lower()
