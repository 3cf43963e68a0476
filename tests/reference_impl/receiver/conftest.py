"""One store fixture for both implementations: every store, projection and API test runs on a
fresh SQLite file and on a fresh PostgreSQL database (skipped, with the reason, without a server).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reference_impl.receiver.server import RunningReceiver, running_receiver
from reference_impl.receiver.store import Store
from reference_impl.receiver.stores import open_store

BACKENDS = ("sqlite", "postgresql")


@dataclass
class Backend:
    """Where a test's store lives, and a side door to its database for setting up faults."""

    name: str
    location: str | Path
    error: type[Exception]

    def open(self) -> Store:
        """Open (or reopen) the store, as a receiver starting on this database would."""
        return open_store(self.location)

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        """Run SQL on the database outside the store, committed at once."""
        if self.name == "sqlite":
            db = sqlite3.connect(self.location, isolation_level=None)
            try:
                cursor = db.execute(sql) if ";" not in sql.strip(" ;") else db.executescript(sql)
                return cursor.fetchall()
            finally:
                db.close()
        with psycopg.connect(str(self.location), autocommit=True) as db:
            cursor = db.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def scalar(self, sql: str) -> Any:
        return self.execute(sql)[0][0]

    def fail_inserts(self, table: str) -> None:
        """A real database fault: from now on every insert into `table` aborts."""
        if self.name == "sqlite":
            self.execute(
                f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table}"
                " BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
            )
        else:
            self.execute(
                "CREATE OR REPLACE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql"
                " AS $$ BEGIN RAISE EXCEPTION 'disk says no'; END $$;"
                f" CREATE TRIGGER fail_{table} BEFORE INSERT ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION fail()"
            )

    def allow_inserts(self, table: str) -> None:
        on = f" ON {table}" if self.name == "postgresql" else ""
        self.execute(f"DROP TRIGGER fail_{table}{on}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path / "store.sqlite3", sqlite3.Error)
    return Backend("postgresql", request.getfixturevalue("postgres_url"), psycopg.Error)


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    opened = backend.open()
    yield opened
    opened.close()


@pytest.fixture
def receiver(backend: Backend) -> Iterator[RunningReceiver]:
    """The reference receiver on a free loopback port, on each store implementation."""
    with running_receiver(backend.location) as running:
        yield running
