"""Keeping the callback URL's secret out of the ESP's output.

A receiver may authenticate callbacks by a token in the URL (the reference receiver's
`/callback/<token>`), so the URL is a credential: the ESP prints it as `masked_url` gives it,
and `SecretFilter` replaces the secret in every log record, whichever library wrote it (httpx
logs each request's full URL at INFO, and at DEBUG under `--verbose`).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

MASK = "****"
MIN_SECRET = 6
"""A part shorter than this is masked only inside the whole URL: replacing a two-letter path
segment everywhere would garble the log and hide nothing worth hiding."""


def url_secrets(url: str) -> list[str]:
    """The parts of `url` that may be a credential: the userinfo password, the path after its
    first segment (`/callback/<token>`'s token), and the query."""
    parts = urlsplit(url)
    tail = parts.path.lstrip("/").split("/", 1)[1:]
    return [part for part in (parts.password, *tail, parts.query) if part]


def masked_url(url: str) -> str:
    """`url` fit for a log: the first path segment kept (`/callback`), what follows it and any
    query shown as `****`, a password too, so the operator sees where callbacks go, not how
    they are authorized."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = f"{parts.username}:{MASK}@{parts.hostname}" + (
            f":{parts.port}" if parts.port else ""
        )
    first, *rest = parts.path.lstrip("/").split("/", 1) if parts.path else [""]
    path = f"/{first}" if parts.path else ""
    if rest and rest[0]:
        path += f"/{MASK}"
    elif rest:
        path += "/"
    return urlunsplit((parts.scheme, netloc, path, MASK if parts.query else "", ""))


class SecretFilter(logging.Filter):
    """Writes `url` masked, and each of its secrets as `****`, in every record's message; a
    handler filter, so records from every logger (httpx, httpcore, the ESP's own) pass it."""

    def __init__(self, url: str) -> None:
        super().__init__()
        shown = masked_url(url)
        long_secrets = [s for s in url_secrets(url) if len(s) >= MIN_SECRET]
        self.replacements = [(url, shown)] if shown != url else []
        self.replacements += [(s, MASK) for s in sorted(set(long_secrets), key=len, reverse=True)]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.replacements:
            return True
        message = record.getMessage()
        redacted = message
        for secret, shown in self.replacements:
            redacted = redacted.replace(secret, shown)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
