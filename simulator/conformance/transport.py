"""The one seam between the checks and the receiver under test, in the manner of httpx transports.

A `Target` says where callbacks go and where the optional state read API lives. The same checks
run against a WSGI app in this process (`httpx.WSGITransport`: no sockets, fast) or against any
live URL; nothing above this module knows which.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from simulator.errors import SimulatorError

IN_PROCESS_BASE = "http://receiver.invalid"
DEFAULT_TIMEOUT = httpx.Timeout(30.0)


class TargetError(SimulatorError, ValueError):
    """The receiver to test was named in a way that cannot be used."""


@dataclass(frozen=True)
class Target:
    """Where to send callbacks (`callback_url`) and, optionally, where to read receiver state."""

    callback_url: str
    state_url: str | None = None
    transport_factory: Callable[[], httpx.BaseTransport] | None = None
    description: str = ""
    state_token: str | None = field(default=None, repr=False)
    """Bearer token for the state read API; kept out of `repr` so it never reaches a report."""

    def http_client(self) -> httpx.Client:
        transport = self.transport_factory() if self.transport_factory else None
        return httpx.Client(transport=transport, timeout=DEFAULT_TIMEOUT, follow_redirects=False)


def url_target(
    callback_url: str, state_url: str | None = None, state_token: str | None = None
) -> Target:
    """A live receiver reachable over HTTP, e.g. `http://127.0.0.1:8025/callback`."""
    parts = urlsplit(callback_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise TargetError(
            f"receiver URL {callback_url!r} is not an absolute http(s) URL; "
            "pass the full callback URL, e.g. http://127.0.0.1:8025/callback"
        )
    if state_url is not None and urlsplit(state_url).scheme not in {"http", "https"}:
        raise TargetError(
            f"state URL {state_url!r} is not an absolute http(s) URL; "
            "pass the receiver's base URL, e.g. http://127.0.0.1:8025"
        )
    return Target(
        callback_url, state_url, None, f"live receiver at {callback_url}", state_token or None
    )


def wsgi_target(
    app: Callable[..., Any],
    callback_path: str = "/callback",
    state: bool | None = None,
    description: str = "",
) -> Target:
    """A WSGI app (a Flask app, say) called in this process through `httpx.WSGITransport`.

    `raise_app_exceptions=False` so an app crash is seen as the 500 a real server would send, not
    as a Python exception in the checker. `state=None` probes the app for the read API.
    """

    def transport() -> httpx.BaseTransport:
        return httpx.WSGITransport(app=app, raise_app_exceptions=False)

    if state is None:
        state = serves_state_api(transport())
    return Target(
        IN_PROCESS_BASE + callback_path,
        IN_PROCESS_BASE if state else None,
        transport,
        description or f"in-process WSGI app {getattr(app, 'name', app)!r}",
    )


def serves_state_api(transport: httpx.BaseTransport) -> bool:
    """Whether `GET /api/events` answers `{"events": [...]}`, as the reference read API does."""
    with httpx.Client(transport=transport, timeout=DEFAULT_TIMEOUT) as client:
        response = client.get(IN_PROCESS_BASE + "/api/events")
    try:
        return response.status_code == 200 and isinstance(response.json().get("events"), list)
    except (ValueError, AttributeError):
        return False


def load_app(spec: str) -> Callable[..., Any]:
    """Import `module:attribute` as `flask --app` and gunicorn do, from the current directory too.

    A factory (anything without `wsgi_app`, or an attribute written `create_app()`) is called
    with no arguments.
    """
    module_name, _, attribute = spec.partition(":")
    attribute = attribute.removesuffix("()")
    if not module_name or not attribute:
        raise TargetError(f"app {spec!r} is not of the form 'package.module:attribute'")
    _import_from_working_directory()
    try:
        obj = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise TargetError(
            f"cannot import app {spec!r} from {os.getcwd()}: {exc}; run from the folder that "
            "holds the module, or install it"
        ) from exc
    return obj if hasattr(obj, "wsgi_app") else obj()


def _import_from_working_directory() -> None:
    """Put the current directory first on `sys.path`, as `python -m` does and pytest does not."""
    here = os.getcwd()
    if not any(entry in ("", here) for entry in sys.path):
        sys.path.insert(0, here)


REFUSING_STATUSES = {
    401: "asks for credentials",
    403: "forbids the request",
    404: "has no such path",
    405: "does not take a POST there",
}
"""Probe answers that no check could get past: the run stops before it starts."""


def probe(target: Target) -> None:
    """POST an empty body once and stop early when the URL cannot be a callback endpoint.

    A receiver must answer an unreadable body with a 400 (PROTOCOL.md section 4), so any answer
    but a refused connection or one of `REFUSING_STATUSES` lets the suite run and grade it.
    """
    url = target.callback_url
    example = "e.g. http://127.0.0.1:8025/callback"
    try:
        with target.http_client() as client:
            response = client.post(
                url, content=b"", headers={"Content-Type": "application/json"}, timeout=10
            )
    except httpx.TimeoutException as exc:
        raise TargetError(f"the receiver at {url} did not answer within 10 s ({exc})") from exc
    except httpx.HTTPError as exc:
        raise TargetError(
            f"cannot reach the receiver at {url}: {exc}; is it running, and is this the full "
            f"callback URL ({example})?"
        ) from exc
    reason = REFUSING_STATUSES.get(response.status_code)
    if reason is not None:
        raise TargetError(
            f"the receiver at {url} {reason} (HTTP {response.status_code} to a POST); "
            f"give the full callback URL ({example})"
        )
