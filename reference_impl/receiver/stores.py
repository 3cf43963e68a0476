"""Which `Store` a `--db` value names: a PostgreSQL URL, or a SQLite file (the embedded default).

`postgresql://user@host/dbname` (or `postgres://`) opens `PostgresStore`, for several receiver
processes sharing one database; anything else is a SQLite file, given as a path or as
`sqlite:///relative.sqlite3` / `sqlite:////absolute.sqlite3` (the usual URL forms).
"""

from __future__ import annotations

from pathlib import Path

from reference_impl.receiver.store import SQLiteStore, Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"


def is_postgres_url(location: str | Path) -> bool:
    """Whether `location` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def sqlite_path(location: str | Path) -> Path:
    """The SQLite file `location` names: a path, or a `sqlite:///` URL."""
    text = str(location)
    return Path(text.removeprefix(SQLITE_SCHEME)) if text.startswith(SQLITE_SCHEME) else Path(text)


def open_store(location: str | Path) -> Store:
    """Open (creating or upgrading its schema) the store `location` names."""
    if is_postgres_url(location):
        # Imported here: a SQLite receiver never loads the PostgreSQL driver.
        from reference_impl.receiver.store_postgres import PostgresStore

        return PostgresStore(str(location))
    return SQLiteStore(sqlite_path(location))


def describe(location: str | Path) -> str:
    """What the CLI prints when opening the store."""
    if is_postgres_url(location):
        from reference_impl.receiver.store_postgres import shown_url

        return f"{shown_url(str(location))} (PostgreSQL)"
    return f"{sqlite_path(location)} (SQLite, WAL)"
