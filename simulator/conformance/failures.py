"""The fuzzer's failures on disk: each shrunk failing request saved with its requirement and the
run's seed, so `bounceback fuzz --replay FILE URL` can send it again and give the verdict.

A file is JSON (`format` 1): the request body as UTF-8 text, or base64 when it is not valid
UTF-8, its Content-Type, the requirement id, the seed, the URL it failed on, what differed, the
curl line and the bounceback version.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simulator.conformance.checks import REPLAY_JUDGES
from simulator.conformance.client import JSON_CONTENT_TYPE, CallbackClient, Exchange
from simulator.conformance.context import ConformanceFailure, Context
from simulator.conformance.report.about import bounceback_version
from simulator.conformance.requirements import BY_ID
from simulator.errors import SimulatorError

FAILURE_FORMAT = 1
DEFAULT_FOLDER = "bounceback-failures"


class ReplayError(SimulatorError):
    """A saved failure cannot be read, or cannot be replayed from one request."""


def save_failure(folder: Path, failure: ConformanceFailure, seed: int) -> Path:
    """Write `failure` to `folder` (made on the first failure), named by requirement and body."""
    request = failure.request
    if request is None:
        raise ReplayError(f"{failure.requirement.id}: the failure recorded no request to save")
    content = request.content
    try:
        body: dict[str, str] = {"body": content.decode("utf-8")}
    except UnicodeDecodeError:
        body = {"body_base64": base64.b64encode(content).decode("ascii")}
    digest = hashlib.sha256(content).hexdigest()[:12]
    record = {
        "format": FAILURE_FORMAT,
        "bounceback_version": bounceback_version(),
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "requirement": failure.requirement.id,
        "seed": seed,
        "url": request.url,
        "case": failure.case,
        "content_type": dict(request.headers).get("Content-Type", JSON_CONTENT_TYPE),
        **body,
        "differences": [
            {"field": f, "expected": e, "got": g}
            for f, e, g in (r.columns() for r in failure.differences)
        ],
        "replay": request.as_curl(),
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{failure.requirement.id}-{digest}.json"
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    except OSError as exc:
        raise ReplayError(f"cannot save the failure in {folder}: {exc.strerror or exc}") from exc
    return path


@dataclass(frozen=True)
class SavedFailure:
    path: Path
    requirement_id: str
    seed: int | None
    content: bytes
    content_type: str


def load_failure(path: Path) -> SavedFailure:
    """Read a saved failure, naming the file and what is wrong with it."""
    try:
        record: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ReplayError(f"{path} is not a saved failure (not JSON: {exc})") from exc
    if not isinstance(record, dict) or record.get("format") != FAILURE_FORMAT:
        raise ReplayError(f"{path} is not a saved failure of format {FAILURE_FORMAT}")
    requirement_id = record.get("requirement")
    if requirement_id not in BY_ID:
        raise ReplayError(f"{path}: unknown requirement {requirement_id!r}")
    if requirement_id not in REPLAY_JUDGES:
        raise ReplayError(
            f"{path}: {requirement_id} depends on a sequence of callbacks and the receiver's "
            f"state, so one request cannot replay it; run `bounceback fuzz URL --state-url BASE "
            f"--requirement {requirement_id} --seed {record.get('seed')}` instead"
        )
    if isinstance(record.get("body"), str):
        content = record["body"].encode("utf-8")
    elif isinstance(record.get("body_base64"), str):
        content = base64.b64decode(record["body_base64"])
    else:
        raise ReplayError(f"{path}: no request body (body or body_base64)")
    return SavedFailure(
        path,
        requirement_id,
        record.get("seed"),
        content,
        str(record.get("content_type") or JSON_CONTENT_TYPE),
    )


def saved_failures(path: Path) -> list[SavedFailure]:
    """One file, or every saved failure (*.json) in a folder, in name order."""
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise ReplayError(f"{path} holds no saved failure (*.json)")
        return [load_failure(file) for file in files]
    return [load_failure(path)]


def replay(
    client: CallbackClient, saved: SavedFailure
) -> tuple[Exchange, ConformanceFailure | None]:
    """Send the saved request again; the failure it still causes, or None when it passes now."""
    exchange = client.post(saved.content, content_type=saved.content_type)
    rows = REPLAY_JUDGES[saved.requirement_id](Context(client), exchange)
    if not rows:
        return exchange, None
    case = f"replay of {saved.path.name}"
    return exchange, ConformanceFailure(BY_ID[saved.requirement_id], case, rows, exchange)
