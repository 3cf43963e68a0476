"""The reference callback receiver: Flask app, store, projection, server, OpenAPI, CLI.

What users import: `create_app` and `ReceiverConfig` to mount the receiver in their own WSGI
stack, `running_receiver` (or `BackgroundServer`) to run it on a real socket, the `Store`
interface with its two implementations (`SQLiteStore`, the embedded default, and
`PostgresStore`, for several processes on one database) and `open_store`, which picks one from a
`--db` value, the records, and the errors each raises.

`PostgresStore` is imported on first use, so a SQLite receiver never loads the PostgreSQL driver.
"""

from typing import Any

from reference_impl.receiver.app import DEFAULT_MAX_BODY_BYTES, ReceiverConfig, create_app
from reference_impl.receiver.openapi import openapi_document, payload_schema
from reference_impl.receiver.responses import QueryError
from reference_impl.receiver.server import (
    BackgroundServer,
    RunningReceiver,
    ServerError,
    callback_url,
    running_receiver,
)
from reference_impl.receiver.store import RawCallback, SentMessage, SQLiteStore, Store, StoreError
from reference_impl.receiver.stores import open_store

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "BackgroundServer",
    "PostgresStore",
    "QueryError",
    "RawCallback",
    "ReceiverConfig",
    "RunningReceiver",
    "SQLiteStore",
    "SentMessage",
    "ServerError",
    "Store",
    "StoreError",
    "callback_url",
    "create_app",
    "open_store",
    "openapi_document",
    "payload_schema",
    "running_receiver",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from reference_impl.receiver.store_postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
