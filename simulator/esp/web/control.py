"""Runtime controls over HTTP, like Mailpit's chaos API, and the reset between tests.

- `GET /api/chaos`: the current controls; `PUT /api/chaos` with (part of) that document changes
  them (fault rate and reply per stage, outcome rates, delivery paused, receiver down); a wrong
  change is a 400 naming every wrong key, with the closest allowed one, and changes nothing;
  `DELETE /api/chaos` restores the scenario's. `GET /api/changes`: every change, newest first.
- `DELETE /api/state`: empty the spool (messages, events, batches, attempts, dead letters,
  refusals). It waits for the dispatcher to end its pass, so no answer lands on a batch that is
  gone; a POST still in flight after `RESET_WAIT_SECONDS` makes it a 409 that removed nothing.

The checks are `controls.apply_change`'s; this only carries JSON in and out. Who made a change
(`source`) is the client's address and, from the dashboard, `dashboard`.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from simulator.esp.controls import ControlError
from simulator.esp.dispatcher import RESET_BUSY, RESET_WAIT_SECONDS
from simulator.esp.web.app import WebConfig

NOT_JSON = "send the change as a JSON object (Content-Type: application/json)"
SOURCE_HEADER = "X-Bounceback-Source"


def _config() -> WebConfig:
    config: WebConfig = current_app.config["ESP"]
    return config


def _source() -> str:
    named = request.headers.get(SOURCE_HEADER, "api")[:40]
    return f"{named} ({request.remote_addr})"


def control_blueprint() -> Blueprint:
    blueprint = Blueprint("control", __name__, url_prefix="/api")

    @blueprint.get("/chaos")
    def chaos() -> object:
        panel = _config().panel
        assert panel is not None
        return jsonify(panel.current.document())

    @blueprint.put("/chaos")
    def change() -> object:
        panel = _config().panel
        assert panel is not None
        document = request.get_json(silent=True)
        if document is None:
            return jsonify(error=NOT_JSON), 400
        try:
            controls, lines = panel.change(document, _source())
        except ControlError as exc:
            problems = [{"key": key, "reason": reason} for key, reason in exc.problems]
            return jsonify(error=str(exc), problems=problems), 400
        return jsonify(controls=controls.document(), changes=lines)

    @blueprint.delete("/chaos")
    def restore() -> object:
        panel = _config().panel
        assert panel is not None
        return jsonify(controls=panel.restore(_source()).document())

    @blueprint.get("/changes")
    def changes() -> object:
        panel = _config().panel
        assert panel is not None
        return jsonify(changes=panel.changes())

    @blueprint.delete("/state")
    def reset() -> object:
        config = _config()
        assert config.reset is not None
        removed = config.reset(_source())
        if removed is None:
            return jsonify(error=RESET_BUSY.format(seconds=RESET_WAIT_SECONDS)), 409
        return jsonify(removed=removed)

    return blueprint
