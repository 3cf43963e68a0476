"""The vendor's own sample payloads (copied from its public page), used as fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).parent / "fixtures" / "samples"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text("utf-8"))


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()
