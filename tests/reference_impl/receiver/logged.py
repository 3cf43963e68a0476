"""Callback bodies for the store and projection tests, on either store, and what they count."""

from __future__ import annotations

import json

from reference_impl.protocol.meta import Meta, build_meta
from reference_impl.protocol.payload import read_batch
from reference_impl.receiver.store import RawCallback, Store


def meta_for(email: str, message_id: int = 1) -> str:
    return build_meta(Meta(email, 9, 1730714617, 1, "spring", message_id))


def body(*events: tuple[str, str]) -> bytes:
    failed = [{"type": kind, "email": email, "meta": meta_for(email)} for kind, email in events]
    return json.dumps({"version": "v2", "events": {"failed": failed}}).encode()


def record(store: Store, payload: bytes) -> int:
    return store.record_callback(RawCallback(payload, "127.0.0.1", None, 0.0), read_batch(payload))


LABEL_COUNTERS = (
    "SELECT label, type, first_seen, duplicates FROM label_tallies ORDER BY label, type",
    "SELECT label, sent FROM label_sent_tallies ORDER BY label",
)
"""The per-label counters read whole, on either store, for tests that check them row by row."""
