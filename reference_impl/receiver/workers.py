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

Inside each worker the requests are served by the same hardened waitress server as the single
process (`server.hardened_server`), not by gunicorn's own HTTP workers: gunicorn's gthread worker
reads a request's headers and body on a pool thread with a blocking socket, so a few clients
trickling a header hold every thread (slowloris), and no setting bounds that read (`timeout` is
the worker's heartbeat, `keepalive` only the wait between requests). waitress reads requests on
its event loop and hands a thread only a complete one, and the server's hooks give the request
deadline, the framing refusals and the JSON shape of every refusal, so `--workers N` keeps the
same promises as one process (docs/receiver.md, "What applies under --workers").
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.base import Worker
from waitress import wasyncore

from reference_impl.receiver.app import ReceiverConfig, create_app
from reference_impl.receiver.server import DEFAULT_REQUEST_TIMEOUT, ServerError, hardened_server
from reference_impl.receiver.stores import is_postgres_url, open_store

# How often (seconds) a worker's loop tells the master it is alive and checks it should stop.
HEARTBEAT = 1.0


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


class WaitressWorker(Worker):
    """A gunicorn worker process whose requests the hardened waitress server reads and answers.

    gunicorn keeps what it is for: forking, supervising and replacing workers, and their signals
    (TERM stops gracefully, QUIT and INT at once). Each worker runs waitress's event loop on the
    inherited listener, with `threads` request threads, beating the heartbeat every second.
    """

    def run(self) -> None:
        receiver: WorkerServer = self.app
        (listener,) = self.sockets  # WorkerServer binds exactly one socket
        server = hardened_server(
            self.wsgi,
            threads=self.cfg.threads,
            max_body_bytes=receiver.receiver_config.max_body_bytes,
            request_timeout=receiver.request_timeout,
            sock=listener.sock,
        )
        while self.alive and os.getppid() == self.ppid:
            self.notify()
            wasyncore.loop(timeout=HEARTBEAT, use_poll=True, map=server._map, count=1)
        self._finish(server)

    def _finish(self, server: Any) -> None:
        """Stop accepting, give requests under way `graceful_timeout` to be answered, then close."""
        server.close()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while time.monotonic() < deadline and any(_busy(c) for c in server._map.values()):
            self.notify()
            wasyncore.loop(timeout=0.1, use_poll=True, map=server._map, count=1)
        wasyncore.close_all(server._map)
        server.task_dispatcher.shutdown(timeout=1)


def _busy(channel: Any) -> bool:
    """A connection with a request being answered or an answer still being written."""
    return bool(getattr(channel, "requests", None)) or getattr(channel, "total_outbufs_len", 0) > 0


class WorkerServer(BaseApplication):
    """gunicorn with `workers` forked processes serving the receiver app on `sock`."""

    def __init__(
        self,
        config: ReceiverConfig,
        sock: socket.socket,
        workers: int,
        threads: int,
        on_ready: Callable[[], None] = lambda: None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self.receiver_config = config
        self.request_timeout = request_timeout
        self.sock = sock
        self.options = {
            "bind": [f"fd://{sock.fileno()}"],
            "workers": workers,
            "worker_class": WaitressWorker,
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
