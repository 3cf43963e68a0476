"""Durable storage for the receiver: raw callbacks, events, system events, profiles, sent mail.

`Store` is the small interface the app and the sender depend on, so a server database can follow;
`SQLiteStore` is the default. It runs in WAL mode with `synchronous=FULL`: `record_batch` returns
only after the transaction is on disk, which is what lets the app answer 200 honestly.

Deduplication: an event is identified by its (meta, type). The first one raises system events and
changes the profile; a retry of it is still logged (raw callback and event row, `duplicate = 1`)
but changes nothing else.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reference_impl import mapping
from reference_impl.meta import Meta, parse_meta
from reference_impl.payload import Batch

SCHEMA = """
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    remote_addr TEXT,
    content_type TEXT,
    body BLOB NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    callback_id INTEGER NOT NULL REFERENCES callbacks(id),
    position INTEGER NOT NULL,
    grp TEXT NOT NULL,
    type TEXT NOT NULL,
    email TEXT NOT NULL,
    meta TEXT NOT NULL,
    profile TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    variant INTEGER NOT NULL,
    description TEXT,
    duplicate INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_meta ON events(meta);
CREATE INDEX IF NOT EXISTS events_message ON events(message_id);
CREATE INDEX IF NOT EXISTS events_label ON events(label);
CREATE TABLE IF NOT EXISTS system_events (
    id INTEGER PRIMARY KEY,
    event_id INTEGER REFERENCES events(id),
    created_at REAL NOT NULL,
    name TEXT NOT NULL,
    profile TEXT NOT NULL,
    meta TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    variant INTEGER NOT NULL,
    cause TEXT NOT NULL,
    properties TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS system_events_message ON system_events(message_id);
CREATE INDEX IF NOT EXISTS system_events_profile ON system_events(profile);
CREATE TABLE IF NOT EXISTS profiles (
    email TEXT PRIMARY KEY,
    subscribed INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS profile_history (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    at REAL NOT NULL,
    cause TEXT NOT NULL,
    meta TEXT NOT NULL,
    subscribed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS profile_history_email ON profile_history(email);
CREATE TABLE IF NOT EXISTS sent_messages (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    meta TEXT NOT NULL UNIQUE,
    message_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    variant INTEGER NOT NULL,
    sent_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS send_failures (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    meta TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    variant INTEGER NOT NULL,
    error TEXT NOT NULL,
    detail TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""


class StoreError(Exception):
    """The store could not complete a write; nothing of it was committed."""


@dataclass(frozen=True, slots=True)
class RawCallback:
    """The request as received, kept verbatim for the raw log."""

    body: bytes
    remote_addr: str | None
    content_type: str | None
    received_at: float


@dataclass(frozen=True, slots=True)
class SentMessage:
    recipient: str
    meta: str
    message_id: int
    label: str
    variant: int
    sent_at: float


def profile_key(email: str) -> str:
    """Profiles are keyed case-insensitively: `User@Example.com` and `user@example.com` are one."""
    return email.lower()


class Store(Protocol):
    def record_batch(self, raw: RawCallback, batch: Batch, response: dict[str, Any]) -> int: ...
    def record_sent(self, messages: Iterable[SentMessage]) -> None: ...
    def record_send_failure(self, recipient: str, meta: str, error: str, detail: str) -> None: ...
    def sent_messages(self) -> list[SentMessage]: ...
    def profile(self, email: str) -> dict[str, Any] | None: ...
    def events(self, type: str | None = None, message_id: int | None = None) -> list[dict]: ...
    def callbacks(self, after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]: ...
    def campaign(self, message_id: int) -> dict[str, Any] | None: ...
    def label_report(self, label: str) -> dict[str, Any] | None: ...
    def counts(self) -> dict[str, int]: ...
    def close(self) -> None: ...


class SQLiteStore:
    """SQLite behind the `Store` interface: one connection per thread, writes serialised."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._connection().executescript(SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                self.path, isolation_level=None, timeout=30, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.row_factory = sqlite3.Row
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    def record_batch(self, raw: RawCallback, batch: Batch, response: dict[str, Any]) -> int:
        """Commit a processed callback: raw log, events, system events, profiles, in one go."""
        now = time.time()
        with self._write() as db:
            callback_id = db.execute(
                "INSERT INTO callbacks (received_at, remote_addr, content_type, body, status,"
                " response) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    raw.received_at,
                    raw.remote_addr,
                    raw.content_type,
                    raw.body,
                    200,
                    json.dumps(response),
                ),
            ).lastrowid
            if batch.accepted:
                self._apply_events(db, callback_id, batch, now)
        return int(callback_id)

    def _apply_events(
        self, db: sqlite3.Connection, callback_id: int, batch: Batch, now: float
    ) -> None:
        metas = json.dumps(sorted({event.meta for event in batch.accepted}))
        seen = {
            (row[0], row[1])
            for row in db.execute(
                "SELECT meta, type FROM events WHERE duplicate = 0"
                " AND meta IN (SELECT value FROM json_each(?))",
                (metas,),
            )
        }
        profiles = json.dumps(sorted({profile_key(e.parsed_meta.email) for e in batch.accepted}))
        state = {
            row[0]: bool(row[1])
            for row in db.execute(
                "SELECT email, subscribed FROM profiles"
                " WHERE email IN (SELECT value FROM json_each(?))",
                (profiles,),
            )
        }
        first = db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0] + 1
        event_rows = []
        system_rows = []
        history_rows = []
        touched: set[str] = set()
        for offset, event in enumerate(batch.accepted):
            meta = event.parsed_meta
            key = (event.meta, event.type)
            duplicate = key in seen
            seen.add(key)
            profile = profile_key(meta.email)
            event_rows.append(
                (
                    first + offset,
                    callback_id,
                    event.position,
                    event.group,
                    event.type,
                    event.email,
                    event.meta,
                    profile,
                    meta.message_id,
                    meta.label,
                    meta.variant,
                    event.description,
                    int(duplicate),
                )
            )
            if duplicate:
                continue
            outcome = mapping.outcome_for(event)
            for raised in outcome.system_events:
                system_rows.append(
                    _system_row(first + offset, now, raised, event.meta, meta, event.type)
                )
            subscribed = state.get(profile, True) and not outcome.unsubscribes
            state[profile] = subscribed
            touched.add(profile)
            history_rows.append((profile, now, event.type, event.meta, int(subscribed)))
        db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", event_rows
        )
        db.executemany(
            "INSERT INTO profiles (email, subscribed, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(email) DO UPDATE SET subscribed = excluded.subscribed,"
            " updated_at = excluded.updated_at",
            [(email, int(state[email]), now) for email in touched],
        )
        db.executemany(
            "INSERT INTO profile_history (email, at, cause, meta, subscribed)"
            " VALUES (?, ?, ?, ?, ?)",
            history_rows,
        )
        db.executemany(
            "INSERT INTO system_events (event_id, created_at, name, profile, meta, message_id,"
            " label, variant, cause, properties) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            system_rows,
        )

    def record_sent(self, messages: Iterable[SentMessage]) -> None:
        rows = [
            (m.recipient, m.meta, m.message_id, m.label, m.variant, m.sent_at) for m in messages
        ]
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO sent_messages (recipient, meta, message_id, label,"
                " variant, sent_at) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def record_send_failure(self, recipient: str, meta: str, error: str, detail: str) -> None:
        """A message that never reached the ESP raises Notification Failed with that Error."""
        parsed = parse_meta(meta)
        outcome = mapping.send_failure_outcome(parsed, error, detail)
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO send_failures (recipient, meta, message_id, label, variant, error,"
                " detail, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    recipient,
                    meta,
                    parsed.message_id,
                    parsed.label,
                    parsed.variant,
                    error,
                    detail,
                    now,
                ),
            )
            db.executemany(
                "INSERT INTO system_events (event_id, created_at, name, profile, meta,"
                " message_id, label, variant, cause, properties)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    _system_row(None, now, raised, meta, parsed, mapping.SEND_FAILED)
                    for raised in outcome.system_events
                ],
            )

    def sent_messages(self) -> list[SentMessage]:
        rows = self._connection().execute(
            "SELECT recipient, meta, message_id, label, variant, sent_at FROM sent_messages"
            " ORDER BY id"
        )
        return [SentMessage(*row) for row in rows]

    def profile(self, email: str) -> dict[str, Any] | None:
        db = self._connection()
        key = profile_key(email)
        row = db.execute(
            "SELECT email, subscribed, updated_at FROM profiles WHERE email = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        history = db.execute(
            "SELECT at, cause, meta, subscribed FROM profile_history WHERE email = ? ORDER BY id",
            (key,),
        )
        return {
            "email": row["email"],
            "subscribed": bool(row["subscribed"]),
            "updated_at": row["updated_at"],
            "history": [
                {
                    "at": h["at"],
                    "cause": h["cause"],
                    "meta": h["meta"],
                    "subscribed": bool(h["subscribed"]),
                }
                for h in history
            ],
        }

    def events(self, type: str | None = None, message_id: int | None = None) -> list[dict]:
        """System events, oldest first; `type` filters on the callback type that caused them."""
        sql = "SELECT * FROM system_events WHERE 1 = 1"
        args: list[Any] = []
        if type is not None:
            sql += " AND cause = ?"
            args.append(type)
        if message_id is not None:
            sql += " AND message_id = ?"
            args.append(message_id)
        rows = self._connection().execute(sql + " ORDER BY id", args)
        return [
            {
                "id": row["id"],
                "name": row["name"],
                "profile": row["profile"],
                "type": row["cause"],
                "meta": row["meta"],
                "message_id": row["message_id"],
                "label": row["label"],
                "variant": row["variant"],
                "created_at": row["created_at"],
                "properties": json.loads(row["properties"]),
            }
            for row in rows
        ]

    def callbacks(self, after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._connection().execute(
            "SELECT * FROM callbacks WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )
        return [
            {
                "id": row["id"],
                "received_at": row["received_at"],
                "remote_addr": row["remote_addr"],
                "content_type": row["content_type"],
                "body": bytes(row["body"]).decode("utf-8", "replace"),
                "status": row["status"],
                "response": json.loads(row["response"]),
            }
            for row in rows
        ]

    def _report(self, where: str, value: Any) -> dict[str, Any] | None:
        db = self._connection()
        counts = dict.fromkeys(mapping.REPORT_COUNTERS, 0)
        found = False
        for kind, count in db.execute(
            f"SELECT type, count(*) FROM events WHERE duplicate = 0 AND {where} = ? GROUP BY type",
            (value,),
        ):
            counts[kind] = count
            found = True
        failures = db.execute(
            f"SELECT count(*) FROM send_failures WHERE {where} = ?", (value,)
        ).fetchone()[0]
        counts[mapping.SEND_FAILED] = failures
        sent = db.execute(
            f"SELECT count(*) FROM sent_messages WHERE {where} = ?", (value,)
        ).fetchone()[0]
        duplicates = db.execute(
            f"SELECT count(*) FROM events WHERE duplicate = 1 AND {where} = ?", (value,)
        ).fetchone()[0]
        if not (found or failures or sent):
            return None
        return {"sent": sent, "counts": counts, "duplicates_ignored": duplicates}

    def campaign(self, message_id: int) -> dict[str, Any] | None:
        report = self._report("message_id", message_id)
        return None if report is None else {"message_id": message_id, **report}

    def label_report(self, label: str) -> dict[str, Any] | None:
        report = self._report("label", label)
        return None if report is None else {"label": label, **report}

    def counts(self) -> dict[str, int]:
        db = self._connection()
        return {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("callbacks", "events", "system_events", "profiles", "sent_messages")
        }


def _system_row(
    event_id: int | None,
    now: float,
    raised: mapping.SystemEvent,
    raw_meta: str,
    meta: Meta,
    cause: str,
) -> tuple[Any, ...]:
    return (
        event_id,
        now,
        raised.name,
        profile_key(raised.profile),
        raw_meta,
        meta.message_id,
        meta.label,
        meta.variant,
        cause,
        json.dumps(raised.properties),
    )
