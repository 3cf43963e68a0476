"""A throwaway PostgreSQL cluster from the server binaries on this machine, for tests and benches.

`initdb`, `pg_ctl` and `postgres` must be on PATH (or in a Debian `/usr/lib/postgresql/N/bin`);
where they are not, `find_binaries` says so and the tests that need a server skip with that
reason (`make postgres` installs one). PostgreSQL refuses to run as root, so under root the cluster
belongs to the `postgres` user, in a temporary folder that user owns. It listens on loopback only,
on a free port, trusts local connections, and is removed when stopped.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

SERVER_USER = "postgres"
# A durable cluster (a bench's) is set as an operator would set a database server, durability
# untouched (fsync, full_page_writes and synchronous_commit keep their defaults, on): the default
# 128 MB of shared buffers is smaller than one flood's tables and indexes, so backends would write
# out evicted pages themselves, and the default 1 GB max_wal_size forces a checkpoint (then a full
# page image in the WAL for every page touched again) every few floods.
OPERATOR_SETTINGS = ("shared_buffers=1GB", "max_wal_size=8GB", "checkpoint_timeout=15min")
BINARIES = ("initdb", "pg_ctl", "postgres")


def find_binaries() -> tuple[Path | None, str]:
    """The folder holding the server binaries, or None and why not."""
    folders = [os.environ.get("PG_BINDIR")] if os.environ.get("PG_BINDIR") else []
    found = shutil.which("pg_ctl")
    if found:
        folders.append(str(Path(found).parent))
    folders += sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin")), reverse=True)
    for folder in folders:
        if all((Path(folder) / name).exists() for name in BINARIES):
            return Path(folder), ""
    return (
        None,
        "no PostgreSQL server binaries (initdb, pg_ctl) found; `make postgres` installs them",
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    """A running cluster: `url(dbname)` for a database, `create_database()` for a fresh one."""

    bindir: Path
    folder: Path
    port: int
    user: str | None
    durable: bool = False
    _databases: int = field(default=0)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *command: str) -> None:
        subprocess.run(
            command, user=self.user, check=True, capture_output=True, text=True, cwd=self.folder
        )

    def start(self) -> Cluster:
        os.makedirs(self.folder, exist_ok=True)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        )
        # Tests need no crash safety from the cluster (the store's own commit rules are tested
        # by what it answers); a bench measures a durable one.
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.folder}",
            "-c max_connections=200",
        ]
        if self.durable:
            options += [f"-c {setting}" for setting in OPERATOR_SETTINGS]
        else:
            options += ["-c fsync=off", "-c full_page_writes=off", "-c synchronous_commit=off"]
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-o",
            " ".join(options),
            "-w",
            "start",
        )
        return self

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_cluster(durable: bool = False) -> Cluster:
    """Start a cluster on a free port; raises RuntimeError naming why when it cannot."""
    bindir, reason = find_binaries()
    if bindir is None:
        raise RuntimeError(reason)
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError as exc:
            raise RuntimeError(f"running as root and there is no {SERVER_USER!r} user") from exc
        user = SERVER_USER
    folder = Path(tempfile.mkdtemp(prefix="bounceback-pg-"))
    cluster = Cluster(bindir, folder, _free_port(), user, durable)
    try:
        return cluster.start()
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"cannot start PostgreSQL: {exc.stderr or exc.stdout}") from exc
