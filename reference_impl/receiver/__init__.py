"""The reference callback receiver: Flask app, store, projection, server, OpenAPI, CLI.

What users import: `create_app` and `ReceiverConfig` to mount the receiver in their own WSGI
stack, `running_receiver` (or `BackgroundServer`) to run it on a real socket, the `Store`
interface with its SQLite implementation and records, and the errors each raises.
"""

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

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "BackgroundServer",
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
    "openapi_document",
    "payload_schema",
    "running_receiver",
]
