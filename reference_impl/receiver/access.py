"""Who may read the receiver's state and who may change it: the rules every blueprint shares.

The log holds recipients' addresses, so reads (`/api/...` and the dashboard) ask for the read
token when one is set, and a receiver listening beyond loopback must have one unless its operator
says the data is public (`--public-read`). A token reaches the receiver as `Authorization: Bearer
TOKEN` (scripts, tests) or, in a browser, as a cookie the dashboard sets once the token was given
in its URL or login form: HttpOnly (no script reads it), SameSite=Strict (no other site's page
sends it) and holding an HMAC of the token rather than the token, so it cannot be replayed as a
bearer token elsewhere.

Anything that changes state from a browser (the preference page's unsubscribe, the reset) is
refused when another site's page sent it: `cross_site`, stated once here.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from reference_impl.errors import PlatformError

BEARER = "Bearer "
COOKIE_NAME = "bounceback_read"
_COOKIE_PURPOSE = b"bounceback dashboard session"
LOOPBACK_NAMES = frozenset({"localhost"})


class ExposureError(PlatformError):
    """A receiver would serve recipients' addresses beyond loopback to anyone."""


def cross_site(sec_fetch_site: str | None, origin: str | None, host: str) -> bool:
    """True for a browser's request from another site: `Sec-Fetch-Site: cross-site`, or an
    `Origin` whose host and port are not `host` (the request's `Host`). `Origin: null` (a
    sandboxed frame, a redirect through another site) is another site too. A mail client's
    one-click POST and a script's request send neither header, so they are not cross-site."""
    if sec_fetch_site is not None and sec_fetch_site.strip().lower() == "cross-site":
        return True
    if origin is None:
        return False
    try:
        netloc = urlsplit(origin.strip()).netloc
    except ValueError:
        return True
    return not netloc or netloc.lower() != host.lower()


def is_loopback(host: str) -> bool:
    """Whether `--host` listens on this machine only (`0.0.0.0` and `::` listen everywhere)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, read_token: str | None, public_read: bool) -> None:
    """Refuse to serve the dashboard and read API beyond loopback without a read token, unless
    the operator said so: the log is a list of recipients' addresses."""
    if read_token is None and not public_read and not is_loopback(host):
        raise ExposureError(
            f"--host {host} would show the dashboard and read API, recipients' addresses"
            " included, to anyone who can reach it: give --read-token (or --token), or"
            " --public-read to serve them without one"
        )


def cookie_value(token: str) -> str:
    """What the dashboard's cookie holds: derived from the token, never the token itself."""
    return hmac.new(token.encode(), _COOKIE_PURPOSE, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ReadAccess:
    """The read token, and whether reads ask for it; `token` also guards the reset."""

    token: str | None
    public_read: bool = False

    @property
    def reads_guarded(self) -> bool:
        return self.token is not None and not self.public_read

    def token_matches(self, given: str) -> bool:
        """Constant-time comparison with the read token (False when none is set)."""
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def presented(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
        """Whether the request presents the token, as a bearer token or the dashboard's cookie."""
        if self.token is None:
            return False
        given = headers.get("Authorization", "")
        if given.startswith(BEARER) and self.token_matches(given[len(BEARER) :].strip()):
            return True
        cookie = cookies.get(COOKIE_NAME, "")
        return hmac.compare_digest(cookie.encode(), cookie_value(self.token).encode())

    def may_read(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
        return not self.reads_guarded or self.presented(headers, cookies)

    def may_reset(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
        """A reset needs the token whenever one is set; with none, only on a receiver that is
        not serving public reads (a loopback one): `--public-read` never makes a reset public."""
        if self.token is None:
            return not self.public_read
        return self.presented(headers, cookies)
