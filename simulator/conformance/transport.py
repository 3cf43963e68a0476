"""The one seam between the checks and the receiver under test, in the manner of httpx transports.

A `Target` says where callbacks go and where the optional state read API lives. The same checks
run against a WSGI app in this process (`httpx.WSGITransport`: no sockets, fast) or against any
live URL; nothing above this module knows which.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
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

    def http_client(self) -> httpx.Client:
        transport = self.transport_factory() if self.transport_factory else None
        return httpx.Client(transport=transport, timeout=DEFAULT_TIMEOUT, follow_redirects=False)


def url_target(callback_url: str, state_url: str | None = None) -> Target:
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
    return Target(callback_url, state_url, None, f"live receiver at {callback_url}")


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
    """Import `module:attribute`; a factory (anything without `wsgi_app`) is called with no args."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise TargetError(f"app {spec!r} is not of the form 'package.module:attribute'")
    try:
        obj = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise TargetError(f"cannot import app {spec!r}: {exc}") from exc
    return obj if hasattr(obj, "wsgi_app") else obj()
