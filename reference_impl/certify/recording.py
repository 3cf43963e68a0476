"""The capture format of a certification run, and the recording receiver that writes it.

A recording is JSON lines, one record per line, each with a `kind`:

- `run`: the plan's name, when the run started and its deadline (epoch seconds);
- `probe`: one message sent: id, recipient, expected outcome, the meta byte-exact, when it was sent,
  the probe response asked for (`500`, `slow` or none) and the send error, if any;
- `callback`: one request that arrived: arrival time, method, path, headers, the raw body (base64,
  so it stays byte-exact whatever it contains), the status and body returned, and which probe
  response was injected.

The file is self-contained: a vendor without a public URL runs the recorder, sends the file in, and
`bounceback certify PLAN --from-recording FILE` grades it. The recording receiver answers like the
reference receiver (same validation, same replies) except for the one callback a probe chose to
answer with a 500 or with a slow response.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from flask import Flask, Response, request

from reference_impl.certify.plan import RESPOND_500, RESPOND_SLOW
from reference_impl.errors import PlatformError
from reference_impl.protocol import replies as r
from reference_impl.protocol.payload import GROUPS, PayloadRejected, read_batch

__all__ = [
    "Callback",
    "RecorderConfig",
    "Recording",
    "RecordingError",
    "RecordingWriter",
    "RunInfo",
    "SentProbe",
    "callback_record",
    "create_recorder_app",
    "event_metas",
    "parse_recording",
    "probe_record",
    "read_recording",
    "run_record",
]


FORMAT_VERSION = 1
KIND_RUN = "run"
KIND_PROBE = "probe"
KIND_CALLBACK = "callback"

INJECTED_500 = RESPOND_500
INJECTED_SLOW = RESPOND_SLOW


class RecordingError(PlatformError, ValueError):
    """A recording file is malformed; the message names the line and the field."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    plan_name: str
    started_at: float
    deadline_at: float
    format: int = FORMAT_VERSION


@dataclass(frozen=True, slots=True)
class SentProbe:
    """A probe as it was really sent: the meta here is the reference for byte-exact comparison."""

    id: str
    to: str
    expect: str
    meta: str
    sent_at: float
    respond: str | None = None
    send_error: str | None = None
    relay_fold: bool = False


@dataclass(frozen=True, slots=True)
class Callback:
    """One HTTP request the recorder received, and what it answered."""

    seq: int
    arrived_at: float
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    status: int
    response: str
    responded_at: float
    injected: str | None = None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class Recording:
    run: RunInfo | None
    probes: tuple[SentProbe, ...]
    callbacks: tuple[Callback, ...]


def run_record(run: RunInfo) -> dict[str, Any]:
    return {
        "kind": KIND_RUN,
        "format": run.format,
        "plan_name": run.plan_name,
        "started_at": run.started_at,
        "deadline_at": run.deadline_at,
    }


def probe_record(probe: SentProbe) -> dict[str, Any]:
    return {
        "kind": KIND_PROBE,
        "id": probe.id,
        "to": probe.to,
        "expect": probe.expect,
        "meta": probe.meta,
        "sent_at": probe.sent_at,
        "respond": probe.respond,
        "send_error": probe.send_error,
        "relay_fold": probe.relay_fold,
    }


def callback_record(callback: Callback) -> dict[str, Any]:
    return {
        "kind": KIND_CALLBACK,
        "seq": callback.seq,
        "arrived_at": callback.arrived_at,
        "method": callback.method,
        "path": callback.path,
        "headers": [list(pair) for pair in callback.headers],
        "body_b64": base64.b64encode(callback.body).decode("ascii"),
        "status": callback.status,
        "response": callback.response,
        "responded_at": callback.responded_at,
        "injected": callback.injected,
    }


def _field(record: Mapping[str, Any], key: str, kinds: type | tuple[type, ...], where: str) -> Any:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise RecordingError(f"{where}: field {key!r} is missing or has the wrong type ({value!r})")
    return value


def _optional(record: Mapping[str, Any], key: str, where: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise RecordingError(f"{where}: field {key!r} must be a string or null, got {value!r}")
    return value


def _flag(record: Mapping[str, Any], key: str, where: str) -> bool:
    value = record.get(key, False)
    if not isinstance(value, bool):
        raise RecordingError(f"{where}: field {key!r} must be true or false, got {value!r}")
    return value


def parse_recording(lines: Iterable[str], *, source: str = "<recording>") -> Recording:
    """Parse JSON lines into a `Recording`; blank lines are skipped, anything else must be valid."""
    run: RunInfo | None = None
    probes: list[SentProbe] = []
    callbacks: list[Callback] = []
    for index, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source} line {index}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise RecordingError(f"{where}: not a JSON object ({exc})") from exc
        if not isinstance(record, dict):
            raise RecordingError(f"{where}: not a JSON object")
        kind = record.get("kind")
        if kind == KIND_RUN:
            if run is not None:
                raise RecordingError(f"{where}: a second 'run' record; a recording holds one run")
            version = _field(record, "format", int, where)
            if version != FORMAT_VERSION:
                raise RecordingError(f"{where}: format {version} is not {FORMAT_VERSION}")
            run = RunInfo(
                _field(record, "plan_name", str, where),
                float(_field(record, "started_at", (int, float), where)),
                float(_field(record, "deadline_at", (int, float), where)),
                version,
            )
        elif kind == KIND_PROBE:
            probes.append(
                SentProbe(
                    _field(record, "id", str, where),
                    _field(record, "to", str, where),
                    _field(record, "expect", str, where),
                    _field(record, "meta", str, where),
                    float(_field(record, "sent_at", (int, float), where)),
                    _optional(record, "respond", where),
                    _optional(record, "send_error", where),
                    _flag(record, "relay_fold", where),
                )
            )
        elif kind == KIND_CALLBACK:
            raw_headers = _field(record, "headers", list, where)
            if not all(
                isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
                for pair in raw_headers
            ):
                raise RecordingError(f"{where}: field 'headers' must be a list of [name, value]")
            try:
                body = base64.b64decode(_field(record, "body_b64", str, where), validate=True)
            except binascii.Error as exc:
                raise RecordingError(f"{where}: field 'body_b64' is not base64 ({exc})") from exc
            callbacks.append(
                Callback(
                    _field(record, "seq", int, where),
                    float(_field(record, "arrived_at", (int, float), where)),
                    _field(record, "method", str, where),
                    _field(record, "path", str, where),
                    tuple((name, value) for name, value in raw_headers),
                    body,
                    _field(record, "status", int, where),
                    _field(record, "response", str, where),
                    float(_field(record, "responded_at", (int, float), where)),
                    _optional(record, "injected", where),
                )
            )
        else:
            raise RecordingError(f"{where}: unknown kind {kind!r}; expected run, probe or callback")
    return Recording(run, tuple(probes), tuple(callbacks))


def read_recording(path: Path) -> Recording:
    try:
        with path.open(encoding="utf-8") as handle:
            return parse_recording(handle, source=str(path))
    except OSError as exc:
        raise RecordingError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


class RecordingWriter:
    """Appends records as JSON lines, flushed at once so a crash loses nothing already received."""

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            self._handle.write(line + "\n")
            self._handle.flush()


def event_metas(body: bytes) -> list[str]:
    """Every string `meta` in a body's event groups, in order; an unreadable body has none."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, dict):
        return []
    metas: list[str] = []
    for group in GROUPS:
        items = events.get(group)
        if isinstance(items, list):
            metas.extend(
                item["meta"]
                for item in items
                if isinstance(item, dict) and isinstance(item.get("meta"), str)
            )
    return metas


@dataclass
class RecorderConfig:
    """What the recorder needs: where to write, which metas get which probe response, and how slow.

    `injections` maps a sent meta to `500` or `slow`; the first request carrying that meta gets it,
    later ones (the retries) are answered normally. `on_callback` feeds a live display.
    """

    writer: RecordingWriter
    injections: dict[str, str] = field(default_factory=dict)
    slow_seconds: float = 30.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], object] = time.sleep
    on_callback: Callable[[Callback], None] | None = None


@dataclass
class _RecorderState:
    config: RecorderConfig
    lock: threading.Lock = field(default_factory=threading.Lock)
    seq: int = 0
    used: set[str] = field(default_factory=set)

    def claim(self, body: bytes, injectable: bool) -> tuple[int, str | None]:
        """Number this request and pick the injection it gets, at most once per meta."""
        metas = event_metas(body) if injectable else []
        with self.lock:
            self.seq += 1
            for meta in metas:
                action = self.config.injections.get(meta)
                if action is not None and meta not in self.used:
                    self.used.add(meta)
                    return self.seq, action
            return self.seq, None


STATE_KEY = "bounceback.recorder"


def _answer(body: bytes, injected: str | None) -> r.Reply:
    if injected == INJECTED_500:
        return r.error_reply(500, r.SERVER_ERROR)
    try:
        return read_batch(body).reply()
    except PayloadRejected as exc:
        return exc.reply


def create_recorder_app(config: RecorderConfig) -> Flask:
    """Flask app that records every request at any path, answering as the reference receiver.

    Each request is written when it arrives, before a slow answer is held, so a run that ends
    while the slow probe is still being held has it in the recording all the same.
    """
    app = Flask("bounceback.certify.recorder")
    state = _RecorderState(config)
    app.extensions[STATE_KEY] = state

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def record(path: str) -> Response:
        arrived_at = config.clock()
        body = request.get_data(cache=False)
        seq, injected = state.claim(body, request.method == "POST")
        if request.method == "POST":
            reply = _answer(body, injected)
        else:
            reply = r.error_reply(405, r.METHOD_NOT_ALLOWED)
        text = json.dumps(reply.body)
        delay = config.slow_seconds if injected == INJECTED_SLOW else 0.0
        callback = Callback(
            seq=seq,
            arrived_at=arrived_at,
            method=request.method,
            path="/" + path,
            headers=tuple((key, value) for key, value in request.headers.items()),
            body=body,
            status=reply.status,
            response=text,
            responded_at=config.clock() + delay,
            injected=injected,
        )
        config.writer.write(callback_record(callback))
        if config.on_callback is not None:
            config.on_callback(callback)
        if delay:
            config.sleep(delay)
        return Response(text, status=reply.status, mimetype="application/json")

    return app
