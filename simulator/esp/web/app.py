"""`create_app(config)`: the fake ESP's Flask app, one blueprint per room.

- `read.py`: the read API (`GET /messages`, `/batches`, `/attempts`, `/dead-letters`, `/stats`),
  whose JSON is what `bounceback esp --list` prints;
- `dashboard.py`: the page at `/`, its state fragment and its server-sent events;
- `control.py`: the runtime controls (`/api/chaos`), their log and the reset (`DELETE
  /api/state`), registered only when the app serves a running ESP (not a spool file alone).

The guard runs before every request: with a read token set, everything but the page's static
files asks for it (bearer header, or the cookie the page sets from `/?token=`); a request that
changes something is refused when another site's page made it, and, on an exposed host without
a token, always. Nothing lives at module level: two apps never share state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, redirect, request

from simulator.esp.panel import ControlPanel
from simulator.esp.web import guard

TOKEN_COOKIE = "bounceback_esp_token"
TOKEN_PARAM = "token"
STREAM_SECONDS = 30.0
"""A dashboard stream ends after this long; the browser's EventSource reconnects by itself,
so a forgotten tab holds a server thread for a bounded time only."""
STREAM_POLL_SECONDS = 0.25
TOKEN_REQUIRED = (
    "this fake ESP needs its read token: send 'Authorization: Bearer <token>', "
    "or open the dashboard once as /?token=<token>"
)
CROSS_SITE = "refused: a page of another site may not change this fake ESP"
CONTROLS_NEED_TOKEN = (
    "refused: this fake ESP listens beyond loopback without --read-token, so its controls and "
    "reset are off; restart it with --read-token"
)
CHANGING_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class WebConfig:
    """What the app serves: a spool file, and the running ESP's controls when there is one."""

    spool_path: Path
    read_token: str | None = None
    exposed: bool = False
    """Bound to a non-loopback address: controls need the token then."""
    panel: ControlPanel | None = None
    reset: Callable[[str], dict[str, int] | None] | None = None
    """Empties the spool between two dispatcher passes (the argument names who asked); None
    when a callback POST stayed in flight too long."""
    title: str = "fake ESP"
    stream_seconds: float = STREAM_SECONDS
    stream_poll_seconds: float = STREAM_POLL_SECONDS


def _guard(config: WebConfig) -> Response | tuple[Response, int] | None:
    if request.method in CHANGING_METHODS:
        origin, fetch_site = request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site")
        if guard.cross_site(fetch_site, origin, request.host):
            return jsonify(error=CROSS_SITE), 403
        if config.exposed and config.read_token is None:
            return jsonify(error=CONTROLS_NEED_TOKEN), 403
    token = config.read_token
    if token is None or request.endpoint == "static":
        return None
    if request.method == "GET" and request.path == "/" and TOKEN_PARAM in request.args:
        if not guard.token_matches(request.args[TOKEN_PARAM], token):
            return jsonify(error=TOKEN_REQUIRED), 401
        # The token leaves the address bar (and the history) for an HttpOnly, same-site cookie.
        response = redirect("/")
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        return response
    presented = guard.bearer(request.headers.get("Authorization")) or request.cookies.get(
        TOKEN_COOKIE
    )
    if not guard.token_matches(presented, token):
        return jsonify(error=TOKEN_REQUIRED), 401
    return None


def create_app(config: WebConfig) -> Flask:
    """The app for `config`; `app.config["ESP"]` is the `WebConfig` the blueprints read."""
    from simulator.esp.web.control import control_blueprint
    from simulator.esp.web.dashboard import dashboard_blueprint
    from simulator.esp.web.read import read_blueprint

    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config["ESP"] = config
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.before_request
    def check_access() -> Any:
        return _guard(config)

    app.register_blueprint(read_blueprint())
    app.register_blueprint(dashboard_blueprint())
    if config.panel is not None:
        app.register_blueprint(control_blueprint())
    return app
