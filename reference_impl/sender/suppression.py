"""Suppression: a campaign skips the profiles the receiver has unsubscribed.

The source page says profiles that unsubscribe, mark mail as spam or hard-bounce "are
automatically unsubscribed from future communications"; mailing them again is also the fastest
way to ruin a sender's reputation. The receiver's store (or its read API, `/api/profiles/<email>`)
knows each profile's state; a soft bounce never unsubscribes (`effects.UNSUBSCRIBING`), so it is
never suppressed. The cause shown is the event that unsubscribed the profile.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

import httpx

from reference_impl.errors import PlatformError

__all__ = [
    "ReceiverSuppression",
    "StoreSuppression",
    "Suppression",
    "SuppressionUnavailable",
    "unsubscribed_by",
]

UNREACHABLE = "suppression: the receiver at {url} cannot answer {path}: {reason}"


class SuppressionUnavailable(PlatformError, ConnectionError):
    """The receiver's read API cannot say who is unsubscribed; nothing was sent."""


class Suppression(Protocol):
    def cause(self, email: str) -> str | None:
        """The event type that unsubscribed `email`, or None to send to it."""
        ...


class ProfileSource(Protocol):
    def profile(self, email: str) -> dict[str, Any] | None: ...


def unsubscribed_by(profile: dict[str, Any] | None) -> str | None:
    """The cause of the first history entry that left the profile unsubscribed (sticky)."""
    if profile is None or profile.get("subscribed", True):
        return None
    for entry in profile.get("history", []):
        if not entry.get("subscribed", True):
            return str(entry.get("cause"))
    return "unsubscribed"


class StoreSuppression:
    """Suppression read from the receiver's SQLite store (`bounceback send --store`)."""

    def __init__(self, store: ProfileSource) -> None:
        self._store = store

    def cause(self, email: str) -> str | None:
        return unsubscribed_by(self._store.profile(email))


class ReceiverSuppression:
    """Suppression read from a running receiver's `/api/profiles/<email>` (404: never heard of)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self._url = url.rstrip("/")
        self._client = httpx.Client(base_url=self._url, timeout=timeout)

    def cause(self, email: str) -> str | None:
        path = f"/api/profiles/{quote(email, safe='@')}"
        try:
            response = self._client.get(path)
        except httpx.HTTPError as exc:
            raise SuppressionUnavailable(
                UNREACHABLE.format(url=self._url, path=path, reason=exc)
            ) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            reason = f"HTTP {response.status_code}"
            raise SuppressionUnavailable(
                UNREACHABLE.format(url=self._url, path=path, reason=reason)
            )
        return unsubscribed_by(response.json())

    def close(self) -> None:
        self._client.close()
