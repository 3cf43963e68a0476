"""The receiver package's public API (issue 10): `__all__` is exactly the curated list, every name
resolves, and every error class in the package derives from `PlatformError`.

A change to the list below is a change to the public API: make it on purpose, with the docs.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import reference_impl.receiver
from reference_impl.errors import PlatformError

PUBLIC = [
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


def test_all_is_exactly_the_curated_list_and_every_name_resolves() -> None:
    assert list(reference_impl.receiver.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(reference_impl.receiver, name) is not None, name


def test_every_error_class_of_the_receiver_derives_from_platform_error() -> None:
    """The CLI catches `PlatformError`: an error outside the tree would end in a traceback."""
    outside = []
    package = reference_impl.receiver
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__ == info.name
                and not issubclass(value, PlatformError)
            ):
                outside.append(f"{info.name}.{value.__name__}")
    assert outside == []


def test_a_sqlite_receiver_does_not_load_the_postgresql_driver() -> None:
    """`PostgresStore` resolves on first use: importing the package leaves psycopg unloaded."""
    import subprocess
    import sys

    code = "import sys, reference_impl.receiver; print('psycopg' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
