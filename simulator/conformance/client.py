"""`CallbackClient`: posts callback bodies to a `Target` and keeps each exchange for reporting.

Every failure report, and the fuzzer's curl reproduction, is built from the `Exchange` recorded
here, so what is reported is byte-for-byte what was sent.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from simulator.conformance.transport import Target
from simulator.errors import SimulatorError
from simulator.protocol.expect import read_reply

JSON_CONTENT_TYPE = "application/json"


def encode(payload: Any) -> bytes:
    """A payload as an ESP would send it: compact UTF-8 JSON, non-ASCII left unescaped."""
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class SentRequest:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    content: bytes

    def summary(self, limit: int = 600) -> str:
        text = self.content.decode("utf-8", errors="backslashreplace")
        if len(text) > limit:
            text = f"{text[:limit]}... ({len(self.content)} bytes in all)"
        return f"{self.method} {self.url}\n  body: {text}"

    def as_curl(self) -> str:
        """A ready-to-run shell command that replays this request exactly."""
        headers = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in self.headers)
        command = f"curl -sS -i -X {self.method} {shlex.quote(self.url)} {headers}".rstrip()
        try:
            text = self.content.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and "\0" not in text:
            return f"printf '%s' {shlex.quote(text)} | {command} --data-binary @-"
        escaped = "".join(f"\\x{byte:02x}" for byte in self.content)
        return f"printf '%b' '{escaped}' | {command} --data-binary @-"


@dataclass
class Exchange:
    """One request and the receiver's answer, parsed when it is JSON."""

    request: SentRequest
    status: int
    headers: dict[str, str]
    content: bytes
    json: Any = None
    json_error: str | None = None

    def summary(self, limit: int = 600) -> str:
        text = self.content.decode("utf-8", errors="backslashreplace")
        if len(text) > limit:
            text = f"{text[:limit]}... ({len(self.content)} bytes in all)"
        content_type = self.headers.get("content-type", "<none>")
        return f"HTTP {self.status} ({content_type})\n  body: {text}"


MAX_STATE_PAGES = 1000
"""Pages of `/api/events` read at most for one question: a receiver whose `next` never ends
(a cursor that does not advance, say) is reported instead of read forever."""


UNAUTHORIZED = (401, 403)


class StatePagingError(SimulatorError):
    """The read API's `next` cursor did not lead to the end of the list."""


class StateUnauthorized(SimulatorError):
    """The read API asks for a bearer token that was not given, or refused the one given."""


class StateResetUnsupported(SimulatorError):
    """The receiver has no `DELETE /api/state`, or refused it for a reason other than a token."""


@dataclass
class StateClient:
    """The receiver's optional read API (the reference receiver's `/api/...` routes).

    `token`, when set, is sent as `Authorization: Bearer TOKEN`, as a receiver guarding its log
    of recipients' addresses asks (`--state-token`). Lists are read to their end by following
    `next` (passed back as `after`), so a paged read API is seen whole.
    """

    http: httpx.Client
    base_url: str
    token: str | None = None

    def _get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        return self._request("GET", path, params)

    def _request(
        self, method: str, path: str, params: dict[str, str] | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.http.request(
            method, f"{self.base_url}{path}", params=params, headers=headers
        )
        if response.status_code in UNAUTHORIZED:
            given = "the token given was refused" if self.token else "no token was given"
            raise StateUnauthorized(
                f"the state read API at {self.base_url} answered HTTP {response.status_code} "
                f"({given}); pass its read token with --state-token (or "
                "$BOUNCEBACK_STATE_TOKEN, or --receiver-state-token under pytest)"
            )
        return response

    def reset(self) -> None:
        """Empty the receiver's state between tests (`DELETE /api/state`, the reference
        receiver's reset; with the same token as the reads)."""
        response = self._request("DELETE", "/api/state")
        if response.status_code != 200:
            raise StateResetUnsupported(
                f"DELETE {self.base_url}/api/state answered HTTP {response.status_code}"
                f" ({response.text[:200]!r}); the receiver must offer that reset to be emptied"
                " between tests"
            )

    def profile(self, email: str) -> dict[str, Any] | None:
        response = self._get(f"/api/profiles/{quote(email, safe='@')}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def events(self, **filters: Any) -> list[dict[str, Any]]:
        """Every event matching `filters`, over as many pages as the read API gives."""
        params = {key: str(value) for key, value in filters.items() if value is not None}
        events: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(MAX_STATE_PAGES):
            response = self._get("/api/events", params)
            response.raise_for_status()
            document = response.json()
            page = list(document.get("events", []))
            events += page
            cursor = document.get("next")
            if cursor is None or not page:
                return events
            if str(cursor) in seen:
                raise StatePagingError(
                    f"{self.base_url}/api/events gave the cursor next={cursor!r} twice; "
                    "a paged list's next must move on"
                )
            seen.add(str(cursor))
            params = {**params, "after": str(cursor)}
        raise StatePagingError(
            f"{self.base_url}/api/events still had a next page after {MAX_STATE_PAGES} pages"
        )


@dataclass
class CallbackClient:
    """Posts payloads to the receiver under test; `history` keeps every exchange in order."""

    target: Target
    http: httpx.Client = field(init=False)
    history: list[Exchange] = field(default_factory=list, init=False)
    keep_history: int = 50

    def __post_init__(self) -> None:
        self.http = self.target.http_client()

    @property
    def state(self) -> StateClient | None:
        if self.target.state_url is None:
            return None
        return StateClient(self.http, self.target.state_url.rstrip("/"), self.target.state_token)

    def post(self, payload: Any, *, content_type: str = JSON_CONTENT_TYPE) -> Exchange:
        """POST `payload` (bytes as is, anything else as JSON); never raises on HTTP errors."""
        content = encode(payload)
        headers = (("Content-Type", content_type),)
        request = SentRequest("POST", self.target.callback_url, headers, content)
        response = self.http.post(self.target.callback_url, content=content, headers=dict(headers))
        exchange = Exchange(request, response.status_code, dict(response.headers), response.content)
        try:
            exchange.json = read_reply(response.content)
        except (UnicodeDecodeError, ValueError) as exc:
            exchange.json_error = str(exc)
        self.history.append(exchange)
        del self.history[: -self.keep_history]
        return exchange

    def post_events(
        self, failed: list[Any] | None = None, success: list[Any] | None = None, **extra: Any
    ) -> Exchange:
        events: dict[str, Any] = {}
        if failed is not None:
            events["failed"] = failed
        if success is not None:
            events["success"] = success
        return self.post({"version": "v2", "events": events, **extra})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> CallbackClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
