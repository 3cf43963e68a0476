"""The platform's side of the v2 SMTP callback protocol: meta codec, callback receiver, sender.

The names below are what users import; each is loaded on first use (PEP 562), so importing the
pure core (`reference_impl.protocol`) never pulls in Flask, SMTP or the fake ESP.
"""

from __future__ import annotations

import importlib
from typing import Any

from reference_impl.errors import PlatformError

__all__ = [
    "Campaign",
    "Meta",
    "PlatformError",
    "Provider",
    "ReceiverConfig",
    "create_app",
    "grade",
    "live_run",
    "load_plan",
    "load_providers",
    "parse_meta",
    "run_demo",
]

_HOMES = {
    "Campaign": "reference_impl.sender",
    "Provider": "reference_impl.sender",
    "load_providers": "reference_impl.sender",
    "run_demo": "reference_impl.sender",
    "Meta": "reference_impl.protocol.meta",
    "parse_meta": "reference_impl.protocol.meta",
    "ReceiverConfig": "reference_impl.receiver.app",
    "create_app": "reference_impl.receiver.app",
    "grade": "reference_impl.certify",
    "live_run": "reference_impl.certify",
    "load_plan": "reference_impl.certify",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'reference_impl' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
