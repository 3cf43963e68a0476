"""The `Store` interface on PostgreSQL, for several receiver processes sharing one database.

Same semantics as `SQLiteStore` (`store.py`): the callback log is the `callbacks` table, a 200 is
sent only after its row is committed (`synchronous_commit` is on by default: the commit waits for
the WAL flush), the first event with a given (meta, type) is the one that counts (a partial unique
index makes that a database rule), the projection resumes where it stopped, and every read first
projects what was committed before it (read-your-writes), whichever process logged it.

What differs, and why:

- Each request writes its callback's event rows itself, in the transaction that commits the
  callback row: one statement (`_LOG_DERIVED`, an `INSERT ... SELECT` over
  `jsonb_array_elements`), so the heavy part of deriving events runs in parallel across every
  thread of every process, with no Python object built per event. The unique index still decides
  first-seen across concurrent writers (the second waits for the first to commit, then skips).
- What must be counted once in order (the totals, the report tallies) is left to the
  projection's step: the callback row keeps what its rows add (`derived`), and one step at a time
  across every process (the transaction-level advisory lock `PROJECTION_LOCK`) adds that up and
  marks the callback projected; a read catching up waits for the step in progress instead of
  counting the same callbacks again. A callback whose events could not be written with it (a
  fault) is committed alone, and the step writes its events first (`_DERIVE_LOGGED`).
- Several processes commit callbacks at once, so ids commit out of order: a cursor ("projected up
  to id N") would skip an id that commits after a larger one. Each callback row has a `projected`
  flag instead, set in the transaction that counts it; a partial index finds the rest.

The schema is versioned (`schema_version`) and migrated in place when a store opens; `MIGRATIONS`
lists every step from an empty database, so a database of any earlier version upgrades.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from reference_impl.protocol import effects
from reference_impl.protocol.meta import parse_meta
from reference_impl.protocol.payload import Batch
from reference_impl.receiver.projection import PROJECTION_STEP, profile_key
from reference_impl.receiver.projector import Projector
from reference_impl.receiver.store import (
    CALLBACK_COLUMNS,
    FAILURE_ARM,
    FEED_COLUMNS,
    PAGE_SIZE,
    RESET_TABLES,
    SCAN_PER_ITEM,
    SENT_TALLIES,
    TOTALS,
    UNATTRIBUTED_ROWS,
    UNATTRIBUTED_WINDOW,
    EventCursor,
    EventStates,
    Page,
    RawCallback,
    SentMessage,
    StoreError,
    callback_detail,
    callback_page,
    callback_state_reads,
    event_states,
    feed_rows,
    merge_event_pages,
    profile_from_history,
    raised_arm,
    timeline_filter,
    timeline_from,
    timeline_width,
    unattributed_page,
)

PROJECTION_LOCK = 0x626F756E6365
"""The advisory lock key (`pg_advisory_xact_lock`) that serialises projection steps."""
MIGRATION_LOCK = PROJECTION_LOCK + 1
"""Held while the schema is created or upgraded, so processes starting together migrate once."""
POOL_SIZE = 8
log = logging.getLogger("bounceback.store")
# Raw callbacks fetched per round trip while a page is filled up to its byte budget.
CALLBACK_ROWS_PER_FETCH = 16

_V1 = """
CREATE TABLE callbacks (
    id BIGSERIAL PRIMARY KEY,
    received_at DOUBLE PRECISION NOT NULL,
    remote_addr TEXT,
    content_type TEXT,
    body BYTEA NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    accepted JSONB NOT NULL
);
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    callback_id BIGINT NOT NULL REFERENCES callbacks(id),
    position INTEGER NOT NULL,
    grp TEXT NOT NULL,
    type TEXT NOT NULL,
    email TEXT NOT NULL,
    meta TEXT NOT NULL,
    profile TEXT NOT NULL,
    message_id BIGINT NOT NULL,
    label TEXT NOT NULL,
    variant BIGINT NOT NULL,
    description TEXT,
    duplicate BOOLEAN NOT NULL
);
CREATE UNIQUE INDEX events_first_seen ON events(meta, type) WHERE NOT duplicate;
CREATE INDEX events_profile_first_seen ON events(profile) WHERE NOT duplicate;
CREATE INDEX events_message ON events(message_id);
CREATE TABLE sent_messages (
    id BIGSERIAL PRIMARY KEY,
    recipient TEXT NOT NULL,
    meta TEXT NOT NULL UNIQUE,
    message_id BIGINT NOT NULL,
    label TEXT NOT NULL,
    variant BIGINT NOT NULL,
    sent_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE send_failures (
    id BIGSERIAL PRIMARY KEY,
    recipient TEXT NOT NULL,
    profile TEXT NOT NULL,
    meta TEXT NOT NULL,
    message_id BIGINT NOT NULL,
    label TEXT NOT NULL,
    variant BIGINT NOT NULL,
    error TEXT NOT NULL,
    detail TEXT NOT NULL,
    failed_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE projection (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    callback_id BIGINT NOT NULL
);
INSERT INTO projection VALUES (1, 0);
CREATE TABLE raises (
    type TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (type, ordinal)
);
CREATE VIEW system_events AS
    SELECT e.id * 2 + r.ordinal AS id, r.name, e.profile, e.type AS cause, e.meta, e.message_id,
           e.label, e.variant, e.email, e.description, NULL AS error, c.received_at AS created_at
    FROM events AS e
    JOIN raises AS r ON r.type = e.type
    JOIN callbacks AS c ON c.id = e.callback_id
    WHERE NOT e.duplicate
    UNION ALL
    SELECT -f.id, 'Notification Failed', f.profile, 'send_failed', f.meta, f.message_id, f.label,
           f.variant, f.recipient, f.detail, f.error, f.failed_at
    FROM send_failures AS f;
"""

_V2 = """
ALTER TABLE callbacks ADD COLUMN projected BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE callbacks ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE callbacks ALTER COLUMN accepted SET STORAGE EXTERNAL;
ALTER TABLE events DROP CONSTRAINT events_callback_id_fkey;
UPDATE callbacks SET projected = true WHERE id <= (SELECT callback_id FROM projection);
CREATE INDEX callbacks_unprojected ON callbacks(id) WHERE NOT projected;
DROP TABLE projection;
CREATE INDEX events_label ON events(label);
CREATE INDEX sent_messages_message ON sent_messages(message_id);
CREATE INDEX sent_messages_label ON sent_messages(label);
CREATE INDEX send_failures_message ON send_failures(message_id);
CREATE INDEX send_failures_label ON send_failures(label);
"""

_V3 = """
CREATE TABLE totals (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO totals (name, value)
    SELECT 'callbacks', count(*) FROM callbacks WHERE projected
    UNION ALL SELECT 'events', count(*) FROM events
    UNION ALL SELECT 'system_events', count(*) FROM system_events
    UNION ALL SELECT 'profiles', count(DISTINCT profile) FROM events WHERE NOT duplicate
    UNION ALL SELECT 'sent_messages', count(*) FROM sent_messages;
CREATE TABLE tallies (
    message_id BIGINT NOT NULL,
    label TEXT NOT NULL,
    type TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    PRIMARY KEY (message_id, label, type)
);
CREATE INDEX tallies_label ON tallies(label);
INSERT INTO tallies
    SELECT message_id, label, type, count(*) FILTER (WHERE NOT duplicate),
           count(*) FILTER (WHERE duplicate)
    FROM events GROUP BY message_id, label, type;
CREATE TABLE sent_tallies (
    message_id BIGINT NOT NULL,
    label TEXT NOT NULL,
    sent BIGINT NOT NULL,
    PRIMARY KEY (message_id, label)
);
CREATE INDEX sent_tallies_label ON sent_tallies(label);
INSERT INTO sent_tallies SELECT message_id, label, count(*) FROM sent_messages GROUP BY 1, 2;
DROP INDEX events_label;
DROP INDEX sent_messages_label;
"""


_V4 = """
ALTER TABLE callbacks ADD COLUMN derived JSONB;
ALTER TABLE callbacks ALTER COLUMN accepted DROP NOT NULL;
CREATE TABLE profiles (profile TEXT PRIMARY KEY);
INSERT INTO profiles SELECT DISTINCT profile FROM events WHERE NOT duplicate;
"""

_V5 = """
CREATE TABLE label_tallies (
    label TEXT NOT NULL,
    type TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    PRIMARY KEY (label, type)
);
INSERT INTO label_tallies
    SELECT label, type, sum(first_seen), sum(duplicates) FROM tallies GROUP BY label, type;
CREATE TABLE label_sent_tallies (
    label TEXT PRIMARY KEY,
    sent BIGINT NOT NULL
);
INSERT INTO label_sent_tallies SELECT label, sum(sent) FROM sent_tallies GROUP BY label;
UPDATE callbacks SET derived = derived || jsonb_build_object('label_tallies', (
    SELECT coalesce(jsonb_agg(t), '[]') FROM (
        SELECT a.label, a.type, sum(a.first_seen) AS first_seen, sum(a.duplicates) AS duplicates
        FROM jsonb_to_recordset(callbacks.derived -> 'tallies')
            AS a(label TEXT, type TEXT, first_seen BIGINT, duplicates BIGINT)
        GROUP BY a.label, a.type
    ) AS t))
WHERE NOT projected AND derived IS NOT NULL;
DROP INDEX tallies_label;
DROP INDEX sent_tallies_label;
"""

_V6 = """
CREATE INDEX callbacks_received ON callbacks(received_at);
CREATE INDEX events_callback ON events(callback_id, id) WHERE NOT duplicate;
CREATE INDEX send_failures_failed ON send_failures(failed_at);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6)
"""Version N is reached by running `MIGRATIONS[N - 1]` on version N - 1.

1: the SQLite layout, a projection cursor included.
2: a `projected` flag per callback replaces the cursor, which concurrent writers can overtake (ids
   commit out of order); read indexes for the label and campaign reports; bodies stored
   uncompressed (compressing 150 KB on every commit cost more than the insert); the events'
   foreign key dropped (only the projection writes events, from callbacks it has just read, and
   checking it cost as much as inserting the row).
3: the counters SQLite keeps (`totals` for `/healthz`, `tallies` and `sent_tallies` for the
   campaign and label reports), counted once from the tables when upgrading; the label indexes
   on events and sent messages, which only those reports read, dropped (one index fewer on every
   event row the projection writes). `totals` counts projected callbacks only: the projection's
   step adds each callback it projects, so a callback still waiting is counted exactly once.
4: event rows are written with their callback, in the request's own transaction, so every
   process writes them in parallel; the callback row keeps what they add to the counters
   (`derived`, NULL until its events are written) for the projection's step to add up, and
   `profiles` holds every profile with a first-seen event once, so concurrent callbacks count a
   new profile once (its primary key decides, as the events' unique index decides first-seen).
   Callbacks logged before version 4 and not yet projected have no events yet: the step writes
   them (`derived` is NULL), as it writes those of a callback whose own transaction could not.
   Only such callbacks keep `accepted` (NULL once their events are written: it
   was about a quarter of the bytes written per event, read back by nothing else).
5: per-label counters (`label_tallies`, `label_sent_tallies`), so a label's report reads a few
   rows where it summed one row of `tallies` per message id (`bounceback send` gives each
   message its own: a million rows for a label of a million messages). Counted once from the
   (message id, label) tallies when upgrading; a callback whose rows are written but not yet
   counted gets its label counts added to `derived` from its (message id, label) ones, so the
   step adds them once. The label indexes on the tallies, read by nothing else, are dropped.
6: indexes to read a page of system events in the view's order (`event_page`): callbacks by
   arrival, each one's first-seen events in id order, send failures by time. Before, every page
   sorted the whole `system_events` view.
"""
SCHEMA_VERSION = len(MIGRATIONS)

_EVENT_ARM = raised_arm(
    "c.received_at",
    "FROM callbacks AS c CROSS JOIN LATERAL ("
    "  SELECT * FROM events AS e WHERE e.callback_id = c.id AND NOT e.duplicate OFFSET 0"
    " ) AS e JOIN raises AS r ON r.type = e.type"
    " WHERE true",
)
"""Raised events in the view's order: callbacks by `callbacks_received`, each one's first-seen
events by `events_callback`, so a page reads about `limit` rows (whole callbacks) and sorts only
within a callback (Incremental Sort, on the callbacks' `received_at`). The events are a subquery
per callback (`OFFSET 0` keeps the planner from merging it into the join): on statistics that lag
the table, as after a fast fill before autovacuum's ANALYZE, the join was planned as a scan of
every event of a `type`."""
_CAMPAIGN_ARM = raised_arm(
    "c.received_at",
    "FROM callbacks AS c JOIN events AS e ON e.callback_id = c.id"
    " JOIN raises AS r ON r.type = e.type"
    " WHERE NOT e.duplicate",
)
"""Raised events of one campaign: the planner picks between its events by `events_message`,
sorted (a campaign's worth, not the store's), and walking the callbacks as `_EVENT_ARM` does,
when the campaign is a large part of the store."""
_CALLBACK_STATE_READS = callback_state_reads(
    "WITH wanted(meta, type) AS (SELECT * FROM unnest(%s::text[], %s::text[]))", "NOT e.duplicate"
)
"""PostgreSQL's reads of a callback's event states: the pairs come as two arrays, metas and
types, zipped by `unnest`."""

# The derivation of a callback's event rows, one statement. `{logged}` names the callback (its
# id and accepted events' columns); `{write}` ends the statement by storing the counts in its
# row (`derived`). Each meta is split on its pipes from the right, as `parse_meta` reads it (the
# email may hold pipes, the label may not): the last element is the empty trailer, then message
# id, label, variant; everything before the six fixed fields is the email. The metas were
# validated before the 200, so this only reads them.
#
# Ids are drawn in position order first, then the first-seen insert skips any (meta, type)
# already stored, earlier in this callback or committed before it (the partial unique index, ON
# CONFLICT DO NOTHING), inserting in (meta, type) order: two transactions writing the same keys
# then take them in the same order, so one waits for the other to commit (and then skips what it
# wrote) and never deadlocks. The second insert logs what was skipped as duplicates, after them
# with fresh ids (it reads the first insert's result whole before writing a row). So the rows'
# ids are in SQLite's order: callback by callback, first-seen events before duplicates, each in
# position order. `profiles` gains the profiles of the first-seen rows, in order too, and counts
# those that are new; what the rows add to the report tallies (per message id and label, and per
# label) and the totals is kept as JSON for the projection's step, which adds them up one step at
# a time: the per-label sums are done here, in parallel, so the serial step adds a few rows per
# callback for them.
_DERIVE = """
WITH logged AS ({logged}),
rows AS (
    SELECT l.id AS callback_id, nextval('events_id_seq') AS id, e.ord,
           e.position::int AS position, e.grp, e.type, e.email, e.meta, e.description,
           string_to_array(e.meta, '|') AS f
    FROM logged AS l,
         ROWS FROM (
             jsonb_array_elements_text(l.accepted -> 'positions'),
             jsonb_array_elements_text(l.accepted -> 'groups'),
             jsonb_array_elements_text(l.accepted -> 'types'),
             jsonb_array_elements_text(l.accepted -> 'emails'),
             jsonb_array_elements_text(l.accepted -> 'metas'),
             jsonb_array_elements_text(l.accepted -> 'descriptions')
         ) WITH ORDINALITY AS e(position, grp, type, email, meta, description, ord)
),
fields AS MATERIALIZED (
    SELECT r.*, cardinality(f) AS n FROM rows AS r
),
first_seen AS (
    INSERT INTO events (id, callback_id, position, grp, type, email, meta, profile, message_id,
                        label, variant, description, duplicate)
    SELECT id, callback_id, position, grp, type, email, meta,
           lower(array_to_string(f[1:n - 7], '|')), f[n - 1]::bigint, f[n - 2], f[n - 3]::bigint,
           description, false
    FROM fields
    ORDER BY meta COLLATE "C", type COLLATE "C", ord
    ON CONFLICT (meta, type) WHERE NOT duplicate DO NOTHING
    RETURNING position, type, profile, message_id, label
),
repeats AS (
    INSERT INTO events (callback_id, position, grp, type, email, meta, profile, message_id, label,
                        variant, description, duplicate)
    SELECT callback_id, position, grp, type, email, meta,
           lower(array_to_string(f[1:n - 7], '|')), f[n - 1]::bigint, f[n - 2], f[n - 3]::bigint,
           description, true
    FROM fields
    WHERE position NOT IN (SELECT position FROM first_seen)
    ORDER BY ord
    RETURNING type, message_id, label
),
new_profiles AS (
    INSERT INTO profiles (profile)
    SELECT DISTINCT profile FROM first_seen ORDER BY profile
    ON CONFLICT DO NOTHING
    RETURNING profile
),
added AS (
    SELECT message_id, label, type, 1 AS fresh, 0 AS repeated FROM first_seen
    UNION ALL
    SELECT message_id, label, type, 0, 1 FROM repeats
),
derived AS (
    SELECT jsonb_build_object(
        'events', (SELECT count(*) FROM added),
        'system_events', (SELECT count(*) FROM first_seen JOIN raises USING (type)),
        'profiles', (SELECT count(*) FROM new_profiles),
        'tallies', (SELECT coalesce(jsonb_agg(t), '[]') FROM (
            SELECT message_id, label, type, sum(fresh) AS first_seen, sum(repeated) AS duplicates
            FROM added GROUP BY message_id, label, type
        ) AS t),
        'label_tallies', (SELECT coalesce(jsonb_agg(t), '[]') FROM (
            SELECT label, type, sum(fresh) AS first_seen, sum(repeated) AS duplicates
            FROM added GROUP BY label, type
        ) AS t)
    ) AS counts
)
{write}
"""
# A new callback, logged with its events in one statement (the request's transaction).
_LOG_DERIVED = _DERIVE.format(
    logged="SELECT nextval('callbacks_id_seq') AS id, %(accepted)s::jsonb AS accepted",
    write="""
INSERT INTO callbacks (id, received_at, remote_addr, content_type, body, status, response,
                       accepted, derived)
SELECT l.id, %(received_at)s, %(remote_addr)s, %(content_type)s, %(body)s, 200, %(response)s,
       NULL, d.counts
FROM logged AS l, derived AS d
RETURNING id""",
)
# The fallback: the callback alone, its events left to the projection's step.
_LOG = (
    "INSERT INTO callbacks (received_at, remote_addr, content_type, body, status, response,"
    " accepted) VALUES (%(received_at)s, %(remote_addr)s, %(content_type)s, %(body)s, 200,"
    " %(response)s, %(accepted)s) RETURNING id"
)
# A logged callback whose events were not written with it, derived by the projection's step.
_DERIVE_LOGGED = _DERIVE.format(
    logged="SELECT id, accepted FROM callbacks WHERE id = %(id)s AND derived IS NULL",
    write="""
UPDATE callbacks AS c SET derived = d.counts, accepted = NULL
FROM logged AS l, derived AS d
WHERE c.id = l.id""",
)
# The projection's step: the counts its callbacks' rows added go into the report tallies (per
# message id and label, per label) and the totals, and the callbacks are marked projected, in
# one transaction.
_PROJECT = """
WITH step AS (
    UPDATE callbacks SET projected = true
    WHERE id = ANY(%(ids)s) AND NOT projected
    RETURNING derived
),
tallied AS (
    INSERT INTO tallies AS t (message_id, label, type, first_seen, duplicates)
    SELECT a.message_id, a.label, a.type, sum(a.first_seen), sum(a.duplicates)
    FROM step,
         jsonb_to_recordset(step.derived -> 'tallies')
             AS a(message_id BIGINT, label TEXT, type TEXT, first_seen BIGINT, duplicates BIGINT)
    GROUP BY a.message_id, a.label, a.type
    ON CONFLICT (message_id, label, type) DO UPDATE
    SET first_seen = t.first_seen + excluded.first_seen,
        duplicates = t.duplicates + excluded.duplicates
),
label_tallied AS (
    INSERT INTO label_tallies AS t (label, type, first_seen, duplicates)
    SELECT a.label, a.type, sum(a.first_seen), sum(a.duplicates)
    FROM step,
         jsonb_to_recordset(step.derived -> 'label_tallies')
             AS a(label TEXT, type TEXT, first_seen BIGINT, duplicates BIGINT)
    GROUP BY a.label, a.type
    ON CONFLICT (label, type) DO UPDATE
    SET first_seen = t.first_seen + excluded.first_seen,
        duplicates = t.duplicates + excluded.duplicates
),
summed AS (
    SELECT count(*) AS callbacks,
           coalesce(sum((derived ->> 'events')::bigint), 0) AS events,
           coalesce(sum((derived ->> 'system_events')::bigint), 0) AS system_events,
           coalesce(sum((derived ->> 'profiles')::bigint), 0) AS profiles
    FROM step
)
UPDATE totals AS t SET value = t.value + d.amount
FROM summed AS s,
     LATERAL (VALUES ('callbacks', s.callbacks), ('events', s.events),
                     ('system_events', s.system_events), ('profiles', s.profiles))
         AS d(name, amount)
WHERE t.name = d.name AND d.amount <> 0
"""
# A step of sent messages, with its tallies (per message id and label, per label) and total: rows
# the meta's unique constraint skips (sent before) are not counted.
_RECORD_SENT = """
WITH sent AS (
    INSERT INTO sent_messages (recipient, meta, message_id, label, variant, sent_at)
    SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::bigint[],
                         %s::float8[])
    ON CONFLICT DO NOTHING
    RETURNING message_id, label
),
tallied AS (
    INSERT INTO sent_tallies AS t (message_id, label, sent)
    SELECT message_id, label, count(*) FROM sent GROUP BY message_id, label
    ON CONFLICT (message_id, label) DO UPDATE SET sent = t.sent + excluded.sent
),
label_tallied AS (
    INSERT INTO label_sent_tallies AS t (label, sent)
    SELECT label, count(*) FROM sent GROUP BY label
    ON CONFLICT (label) DO UPDATE SET sent = t.sent + excluded.sent
)
UPDATE totals SET value = value + (SELECT count(*) FROM sent) WHERE name = 'sent_messages'
"""


def _accepted_json(batch: Batch) -> str:
    """The accepted events' columns as one JSON document: what the derivation statement reads
    (a parameter, or the row of a callback logged without its events)."""
    accepted = batch.accepted
    return json.dumps(
        {
            "positions": accepted.positions,
            "groups": accepted.groups,
            "types": accepted.types,
            "emails": accepted.emails,
            "metas": accepted.metas,
            "descriptions": accepted.descriptions,
        }
    )


class PostgresProjection:
    """Counts added up one step at a time; the same `catch_up`/`project`/`stop` as SQLite's."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self.projector = Projector(lambda: self.project(PROJECTION_STEP))

    def recorded(self) -> None:
        self.projector.recorded()

    def stop(self) -> None:
        self.projector.stop()

    def catch_up(self) -> None:
        """Project every callback committed before this call, by any process; reads call this.

        Callbacks committed meanwhile are left to the next read or the background thread.
        """
        with self._pool.connection() as db:
            row = db.execute("SELECT max(id) FROM callbacks WHERE NOT projected").fetchone()
        target = row[0] if row else None
        if target is None:
            return
        while self._unprojected_up_to(target) and self.project(PROJECTION_STEP, up_to=target):
            pass

    def _unprojected_up_to(self, target: int) -> bool:
        with self._pool.connection() as db:
            return (
                db.execute(
                    "SELECT 1 FROM callbacks WHERE NOT projected AND id <= %s LIMIT 1", (target,)
                ).fetchone()
                is not None
            )

    def project(self, limit: int, up_to: int | None = None) -> int:
        """Project up to `limit` unprojected callbacks in one transaction; return how many.

        Their event rows are normally written already (with the callback, in parallel across
        processes); the step writes those of a callback logged without them, then adds what
        every callback's rows count into the tallies and totals and marks it projected. The
        advisory lock makes this the only step advancing, in every process; a step that waited
        for another finds what that one did already marked `projected`.
        """
        with self._pool.connection() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTION_LOCK,))
            rows = db.execute(
                "SELECT id, derived IS NULL FROM callbacks WHERE NOT projected AND id <= %s"
                " ORDER BY id LIMIT %s",
                (up_to if up_to is not None else 2**63 - 1, limit),
            ).fetchall()
            with db.cursor() as cursor:
                cursor.executemany(_DERIVE_LOGGED, [{"id": id_} for id_, bare in rows if bare])
            if rows:
                db.execute(_PROJECT, {"ids": [id_ for id_, _ in rows]})
            return len(rows)


class PostgresStore:
    """PostgreSQL behind the `Store` interface: a connection pool, safe across processes."""

    def __init__(self, url: str, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self._closed = threading.Event()
        try:
            # One plain connection first: a wrong host or database is then the server's own
            # message at once, where the pool would retry until its timeout.
            psycopg.connect(url, connect_timeout=10).close()
            self._pool = ConnectionPool(
                url, min_size=1, max_size=pool_size, open=False, kwargs={"autocommit": True}
            )
            self._pool.open(wait=True, timeout=30)
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(
                f"cannot open the store {shown_url(url)}: {_reason(exc)}; check that the server is"
                " running and the database exists"
            ) from exc
        self.projection = PostgresProjection(self._pool)
        try:
            self._migrate()
        except psycopg.Error as exc:
            self.close()
            raise StoreError(f"cannot set up the store {shown_url(url)}: {exc}") from exc

    def _migrate(self) -> None:
        with self._pool.connection() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            version = (row[0] if row else None) or 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store {shown_url(self.url)} has schema version {version}, newer than this"
                    f" receiver's {SCHEMA_VERSION}; upgrade bounceback"
                )
            for step in MIGRATIONS[version:]:
                db.execute(step)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version VALUES (%s)", (SCHEMA_VERSION,))
            db.execute("DELETE FROM raises")
            with db.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO raises (type, ordinal, name) VALUES (%s, %s, %s)",
                    [
                        (kind, ordinal, name)
                        for kind, names in effects.RAISES.items()
                        for ordinal, name in enumerate(names)
                    ],
                )

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        self.projection.catch_up()
        with self._pool.connection() as db:
            yield db

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if hasattr(self, "projection"):
            self.projection.stop()
        self._pool.close()

    def record_callback(self, raw: RawCallback, batch: Batch) -> int:
        """Commit an accepted callback and its event rows in one statement (one transaction).

        If writing the events fails, the callback is still committed alone (the 200 only needs
        the log) and the projection's step writes its events, answering reads with the fault
        until it is gone, as SQLite's projection does.
        """
        row = {
            "received_at": raw.received_at,
            "remote_addr": raw.remote_addr,
            "content_type": raw.content_type,
            "body": raw.body,
            "response": json.dumps(batch.reply().body),
            "accepted": _accepted_json(batch),
        }
        try:
            with self._pool.connection() as db:
                logged = db.execute(_LOG_DERIVED, row).fetchone()
        except psycopg.DatabaseError as exc:
            log.warning("events not written with the callback, left to the projection: %s", exc)
            with self._pool.connection() as db:
                logged = db.execute(_LOG, row).fetchone()
        self.projection.recorded()
        return int(logged[0]) if logged else 0

    def record_sent(self, messages: Iterable[SentMessage]) -> None:
        """Record sent messages, counting the new ones into the report tallies and the totals."""
        columns = list(
            zip(
                *(
                    (m.recipient, m.meta, m.message_id, m.label, m.variant, m.sent_at)
                    for m in messages
                ),
                strict=True,
            )
        )
        if not columns:
            return
        with self._pool.connection() as db:
            db.execute(_RECORD_SENT, [list(column) for column in columns])

    def record_send_failure(self, recipient: str, meta: str, error: str, detail: str) -> None:
        """A message that never reached the ESP raises Notification Failed with that Error."""
        parsed = parse_meta(meta)
        with self._pool.connection() as db, db.transaction():
            db.execute(
                "INSERT INTO send_failures (recipient, profile, meta, message_id, label, variant,"
                " error, detail, failed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    recipient,
                    profile_key(parsed.email),
                    meta,
                    parsed.message_id,
                    parsed.label,
                    parsed.variant,
                    error,
                    detail,
                    time.time(),
                ),
            )
            db.execute("UPDATE totals SET value = value + 1 WHERE name = 'system_events'")

    def sent_messages(self) -> list[SentMessage]:
        with self._pool.connection() as db:
            rows = db.execute(
                "SELECT recipient, meta, message_id, label, variant, sent_at FROM sent_messages"
                " ORDER BY id"
            ).fetchall()
        return [SentMessage(*row) for row in rows]

    def min_message_id(self) -> int | None:
        """The lowest message id sent so far, so a new campaign can count down from below it."""
        with self._pool.connection() as db:
            row = db.execute("SELECT min(message_id) FROM sent_messages").fetchone()
        return row[0] if row else None

    def sent_page(self, after: int, limit: int) -> Page:
        """Sent messages in the order recorded, `limit` of them from the id past `after`."""
        with self._pool.connection() as db:
            rows = db.execute(
                "SELECT id, recipient, meta, message_id, label, variant, sent_at FROM sent_messages"
                " WHERE id > %s ORDER BY id LIMIT %s",
                (after, limit + 1),
            ).fetchall()
        items = [SentMessage(*row[1:]) for row in rows[:limit]]
        return Page(items, rows[limit - 1][0] if len(rows) > limit else None)

    def unattributed(self, after: int = 0, limit: int = PAGE_SIZE) -> Page:
        """Callback events whose meta was never recorded as sent: misattributed or forged.

        As on SQLite: events are read in id order past `after`, at most `SCAN_PER_ITEM * limit`
        of them per page, so a page may hold fewer than `limit` events (even none) and still
        have a next.
        """
        scan = SCAN_PER_ITEM * limit
        with self._read() as db:
            window = db.execute(UNATTRIBUTED_WINDOW.format("%s"), (after, scan)).fetchone()
            rows = db.execute(
                UNATTRIBUTED_ROWS.format("%s"), (after, window[0] or after, limit + 1)
            ).fetchall()
        return unattributed_page(window, rows, limit, scan)

    def profile(self, email: str) -> dict[str, Any] | None:
        """Subscription state and history; unsubscribing is sticky, nothing re-subscribes."""
        with self._read() as db:
            rows = db.execute(
                "SELECT e.type, e.meta, c.received_at, c.id FROM events AS e"
                " JOIN callbacks AS c ON c.id = e.callback_id"
                " WHERE e.profile = %s AND NOT e.duplicate ORDER BY e.id",
                (profile_key(email),),
            ).fetchall()
        return profile_from_history(email, rows)

    def events(self, type: str | None = None, message_id: int | None = None) -> list[dict]:
        """Every system event in the order raised, for in-process use; HTTP reads `event_page`."""
        return self.event_page(type, message_id, None, -1)

    def event_page(
        self,
        type: str | None,
        message_id: int | None,
        after: EventCursor | None,
        limit: int,
        *,
        name: str | None = None,
        label: str | None = None,
    ) -> list[dict[str, Any]]:
        """Up to `limit` system events (all if negative) in the order they were raised, after
        `after`; the same filters, order and cursor as SQLite's, read the same way: each half of
        the view by index in its order (`_EVENT_ARM`, `FAILURE_ARM`), the pages merged."""
        arms = []
        with self._read() as db:
            for sql, args in event_page_queries(type, message_id, after, limit, name, label):
                with db.cursor(row_factory=dict_row) as cursor:
                    arms.append(cursor.execute(sql, args).fetchall())
        return merge_event_pages(arms, limit)

    def callbacks(
        self, after_id: int = 0, limit: int = PAGE_SIZE, max_bytes: int | None = None
    ) -> list[dict[str, Any]]:
        """The raw log after `after_id`: `limit` rows, fewer once their bodies pass `max_bytes`
        (a server-side cursor hands rows over a few at a time, so a page of large bodies is not
        held whole before it is cut)."""
        with (
            self._pool.connection() as db,
            db.transaction(),
            db.cursor("callbacks_page", row_factory=dict_row) as cursor,
        ):
            cursor.itersize = CALLBACK_ROWS_PER_FETCH
            cursor.execute(
                f"SELECT {', '.join(CALLBACK_COLUMNS)}"
                " FROM callbacks WHERE id > %s ORDER BY id LIMIT %s",
                (after_id, limit),
            )
            return callback_page(cursor, max_bytes)

    def feed(self, after_id: int, limit: int) -> list[dict[str, Any]]:
        """The raw log after `after_id` without its bodies: a live feed's poll reads no body
        (`octet_length` of an uncompressed stored body is read from its pointer)."""
        with self._pool.connection() as db, db.cursor(row_factory=dict_row) as cursor:
            return feed_rows(
                cursor.execute(
                    f"SELECT {', '.join(FEED_COLUMNS)}, octet_length(body) AS bytes"
                    " FROM callbacks WHERE id > %s ORDER BY id LIMIT %s",
                    (after_id, limit),
                )
            )

    def callback(self, callback_id: int) -> dict[str, Any] | None:
        """One logged callback and what became of each of its events; None if there is none."""
        with self._read() as db, db.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute(
                f"SELECT {', '.join(CALLBACK_COLUMNS)} FROM callbacks WHERE id = %s",
                (callback_id,),
            ).fetchone()
            if row is None:
                return None

            def states(pairs: list[tuple[str, str]]) -> EventStates:
                wanted = ([meta for meta, _ in pairs], [kind for _, kind in pairs])
                first_seen, sent = (db.execute(sql, wanted) for sql in _CALLBACK_STATE_READS[:2])
                raised = cursor.execute(_CALLBACK_STATE_READS[2], wanted)
                return event_states(first_seen, sent, raised)

            return callback_detail(callback_page([row], None)[0], bytes(row["body"]), states)

    def latest_callback_id(self) -> int:
        """The id of the newest logged callback, 0 for an empty log (where a live feed starts)."""
        with self._pool.connection() as db:
            row = db.execute("SELECT coalesce(max(id), 0) FROM callbacks").fetchone()
        return int(row[0]) if row else 0

    def timeline(self, message_id: int | None, label: str | None) -> dict[str, Any]:
        """First-seen events of a campaign or label by arrival time (`timeline_from`)."""
        where, args = timeline_filter(message_id, label, "%s", "NOT e.duplicate")
        source = f"FROM events AS e JOIN callbacks AS c ON c.id = e.callback_id WHERE {where}"
        with self._read() as db:
            row = db.execute(f"SELECT min(c.received_at), max(c.received_at) {source}", args)
            span = tuple(row.fetchone() or (None, None))
            rows = db.execute(
                f"SELECT floor((c.received_at - %s) / %s)::bigint AS b, e.type, count(*) {source}"
                " GROUP BY b, e.type",
                [span[0], timeline_width(span), *args],
            ).fetchall()
        return timeline_from(span, rows)

    def reset(self) -> None:
        """Empty the log and everything derived from it, as a fresh store: for tests, between
        runs. The projection lock keeps every process's step out meanwhile; ids keep counting."""
        with self._pool.connection() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTION_LOCK,))
            tables = (*RESET_TABLES, *SENT_TALLIES, *SENT_TALLIES.values(), "profiles")
            db.execute(f"TRUNCATE {', '.join(tables)}")
            # The totals' rows are named once at creation and only ever updated: zero, not drop.
            db.execute("UPDATE totals SET value = 0")

    def _report(self, tallies: str, column: str, value: Any) -> dict[str, Any] | None:
        """Counts from the tallies (`tallies` and `sent_<tallies>`, rows by `column`): a few rows
        per campaign or label, whatever its size."""
        counts = dict.fromkeys(effects.REPORT_COUNTERS, 0)
        duplicates = 0
        with self._read() as db:
            for kind, first_seen, repeated in db.execute(
                "SELECT type, sum(first_seen)::bigint, sum(duplicates)::bigint"
                f" FROM {tallies} WHERE {column} = %s GROUP BY type",
                (value,),
            ):
                duplicates += repeated
                if first_seen:
                    counts[kind] = first_seen
            counts[effects.SEND_FAILED] = _scalar(
                db, f"SELECT count(*) FROM send_failures WHERE {column} = %s", value
            )
            sent = _scalar(
                db,
                f"SELECT coalesce(sum(sent), 0)::bigint FROM {SENT_TALLIES[tallies]}"
                f" WHERE {column} = %s",
                value,
            )
        if not (sent or duplicates or any(counts.values())):
            return None
        return {"sent": sent, "counts": counts, "duplicates_ignored": duplicates}

    def campaign(self, message_id: int) -> dict[str, Any] | None:
        report = self._report("tallies", "message_id", message_id)
        return None if report is None else {"message_id": message_id, **report}

    def label_report(self, label: str) -> dict[str, Any] | None:
        report = self._report("label_tallies", "label", label)
        return None if report is None else {"label": label, **report}

    def counts(self) -> dict[str, int]:
        """The totals kept by the projection's steps and the send records: no table is counted."""
        with self._read() as db:
            totals = dict(db.execute("SELECT name, value FROM totals").fetchall())
        return {name: totals.get(name, 0) for name in TOTALS}


def event_page_queries(
    type: str | None,
    message_id: int | None,
    after: EventCursor | None,
    limit: int,
    name: str | None = None,
    label: str | None = None,
) -> list[tuple[str, list[Any]]]:
    """The statements `event_page` runs, one per half of the view, each in the view's order;
    apart so a test can read their plans."""
    queries = []
    for arm in (_EVENT_ARM if message_id is None else _CAMPAIGN_ARM, FAILURE_ARM):
        sql, args = arm.page(type, message_id, after, name, label, mark="%s")
        queries.append((f"{sql} LIMIT %s", [*args, limit if limit >= 0 else None]))
    return queries


def _scalar(db: psycopg.Connection[Any], sql: str, value: Any) -> int:
    row = db.execute(sql, (value,)).fetchone()
    return int(row[0]) if row else 0


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    user, host, name = info.get("user", ""), info.get("host", ""), info.get("dbname", "")
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{user}{'@' if user else ''}{host}{port}/{name}"


def _reason(exc: BaseException) -> str:
    """The server's own first line, or why the pool gave up."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
