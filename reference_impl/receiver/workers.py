"""Serving the receiver from several processes (`bounceback receiver --workers N`) under gunicorn.

One Python process handles one request's JSON at a time (the GIL), so a receiver on a 2-core
machine leaves a core idle; N forked processes on one PostgreSQL database share the work, and the
database keeps them one receiver (`store_postgres.py`). SQLite serialises its writers in one
file, so several processes on it would only wait for each other: they are refused.

gunicorn forks its workers from a master that supervises them (a worker that dies is replaced).
Each worker builds its own app after the fork (`load`), so each has its own connection pool and
projection thread; nothing opened before the fork is shared. The listening socket is bound here,
before gunicorn starts, so a taken port is one line like the single-process server's, and port 0
works (gunicorn is handed the socket as `fd://`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from reference_impl.receiver.app import ReceiverConfig, create_app
from reference_impl.receiver.server import ServerError
from reference_impl.receiver.stores import is_postgres_url, open_store

WORKER_CLASS = "gthread"
"""Threads inside each worker: a callback waiting on the commit's fsync leaves the process free."""


def check_workers(location: object, workers: int) -> None:
    """Several processes only on PostgreSQL; raise a one-line `ServerError` otherwise."""
    if workers > 1 and not is_postgres_url(location):
        raise ServerError(
            f"--workers {workers} needs a PostgreSQL --db (postgresql://user@host/dbname):"
            " SQLite serialises writers in one file, so one process serves it"
        )


def listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket; a taken port is a `ServerError` naming it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


class WorkerServer(BaseApplication):
    """gunicorn with `workers` forked processes serving the receiver app on `sock`."""

    def __init__(
        self,
        config: ReceiverConfig,
        sock: socket.socket,
        workers: int,
        threads: int,
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        self.receiver_config = config
        self.sock = sock
        self.options = {
            "bind": [f"fd://{sock.fileno()}"],
            "workers": workers,
            "worker_class": WORKER_CLASS,
            "threads": threads,
            "accesslog": None,
            "loglevel": "warning",
            "graceful_timeout": 10,
            "when_ready": lambda _arbiter: on_ready(),
            "worker_exit": _close_store,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app(self.receiver_config)


def _close_store(_arbiter: Any, worker: Any) -> None:
    """End the worker's projection thread and close its pool; pending work stays in the log."""
    app = getattr(worker, "wsgi", None)
    store = getattr(app, "extensions", {}).get("bounceback_store")
    if store is not None:
        store.close()


def prepare(location: str) -> None:
    """Open the store once in the master: a wrong URL is one line before any worker forks, and
    the schema is created or upgraded once."""
    open_store(location).close()
