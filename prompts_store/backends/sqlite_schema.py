"""The SQLite store's schema, created and upgraded by an ordered list of versioned migrations.

``migrate(conn)`` applies the missing ones in ONE ``BEGIN IMMEDIATE`` transaction, so two processes
opening a fresh file at the same moment are serialised: the second finds the work done. A store
written by a newer mpt-serve (a version beyond this list) is refused rather than guessed at.

Factors are raw little-endian float32 blobs (see :mod:`.blobs`) after their shape columns; the
small columns come first so scans that need only metadata never touch the blobs' pages.
"""

from __future__ import annotations

import sqlite3

from .sql_schema import Migrations, apply_migrations, checked, read_version

# Append only: a released migration is never edited.
MIGRATIONS: Migrations = [
    (
        "families, tasks, tombstones and the sequence",
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta (key, value) VALUES ('seq', 0);
        CREATE TABLE families (
            name TEXT PRIMARY KEY,
            l INTEGER NOT NULL,
            d INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            created_at TEXT NOT NULL,
            source TEXT NOT NULL,
            seq INTEGER NOT NULL,
            shared BLOB NOT NULL
        );
        CREATE UNIQUE INDEX families_seq ON families (seq);
        CREATE TABLE tasks (
            name TEXT PRIMARY KEY,
            family TEXT NOT NULL,
            rank INTEGER NOT NULL,
            l INTEGER NOT NULL,
            d INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            source TEXT NOT NULL,
            seq INTEGER NOT NULL,
            u BLOB NOT NULL,
            v BLOB NOT NULL
        );
        CREATE UNIQUE INDEX tasks_seq ON tasks (seq);
        CREATE INDEX tasks_family ON tasks (family, name, l, d, rank);
        CREATE TABLE tombstones (
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (kind, name)
        );
        CREATE UNIQUE INDEX tombstones_seq ON tombstones (seq);
        """,
    ),
    (
        "commit times of changes, for readers' sync lag",
        """
        ALTER TABLE families ADD COLUMN committed_at REAL;
        ALTER TABLE tasks ADD COLUMN committed_at REAL;
        ALTER TABLE tombstones ADD COLUMN committed_at REAL;
        """,
    ),
    (
        "training jobs (see prompts_store.job_queue)",
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            task TEXT NOT NULL,
            family TEXT NOT NULL,
            mode TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
            examples INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            timeout_s REAL NOT NULL,
            created_at REAL NOT NULL,
            steps INTEGER NOT NULL,
            step INTEGER NOT NULL,
            worker TEXT,
            lease_s REAL,
            heartbeat_at REAL,
            started_at REAL,
            finished_at REAL,
            loss REAL,
            dev TEXT,
            error TEXT,
            cancel_requested INTEGER NOT NULL,
            spec TEXT NOT NULL
        );
        CREATE INDEX jobs_status ON jobs (status, family);
        CREATE INDEX jobs_task ON jobs (task, id);
        """,
    ),
]

LATEST = len(MIGRATIONS)
_HAS_TABLE = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of the open database (0 for a fresh file)."""
    return read_version(conn, _HAS_TABLE, "schema_version")


def migrate(conn: sqlite3.Connection, where: str) -> int:
    """Bring the schema to :data:`LATEST`; returns the number of migrations applied (0 when current).

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    if checked(schema_version(conn), LATEST, where) == LATEST:
        return 0  # the common case takes no write lock
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = checked(schema_version(conn), LATEST, where)  # another process may have migrated meanwhile
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description TEXT)")
        applied = apply_migrations(conn.execute, MIGRATIONS, current, "schema_version", "?")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return applied
