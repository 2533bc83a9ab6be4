"""The PostgreSQL store's schema, created and upgraded by an ordered list of versioned migrations.

``migrate(conn)`` applies the missing ones in ONE transaction that first takes a transaction-scoped
advisory lock (``pg_advisory_xact_lock``): replicas starting at the same moment queue on it, and
the second finds the work done. A database written by a newer mpt-serve is refused.

The tables carry an ``mpt_`` prefix so the store can share a database with other applications;
give it a schema of its own with ``?options=-csearch_path%3DNAME`` in the URL if you prefer.
Names sort bytewise (``COLLATE "C"``, as SQLite's), so pages and cursors agree across backends.
Factors are raw little-endian float32 ``bytea`` (see :mod:`.blobs`), after their shape columns.
"""

from __future__ import annotations

from .sql_schema import Migrations, apply_migrations, checked, read_version

# An arbitrary constant naming the migration lock (pg_advisory_xact_lock takes a bigint).
MIGRATION_LOCK = 0x6D70745F73746F72  # "mpt_stor"

# Append only: a released migration is never edited. Mirrors sqlite_schema.MIGRATIONS.
MIGRATIONS: Migrations = [
    (
        "families, tasks, tombstones and the sequence",
        """
        CREATE TABLE mpt_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
        INSERT INTO mpt_meta (key, value) VALUES ('seq', 0);
        CREATE TABLE mpt_families (
            name TEXT COLLATE "C" PRIMARY KEY,
            l INTEGER NOT NULL,
            d INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            created_at TEXT NOT NULL,
            source TEXT NOT NULL,
            seq BIGINT NOT NULL UNIQUE,
            shared BYTEA NOT NULL
        );
        CREATE TABLE mpt_tasks (
            name TEXT COLLATE "C" PRIMARY KEY,
            family TEXT COLLATE "C" NOT NULL,
            rank INTEGER NOT NULL,
            l INTEGER NOT NULL,
            d INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            source TEXT NOT NULL,
            seq BIGINT NOT NULL UNIQUE,
            u BYTEA NOT NULL,
            v BYTEA NOT NULL
        );
        CREATE INDEX mpt_tasks_family ON mpt_tasks (family, name) INCLUDE (l, d, rank);
        CREATE TABLE mpt_tombstones (
            kind TEXT NOT NULL,
            name TEXT COLLATE "C" NOT NULL,
            seq BIGINT NOT NULL UNIQUE,
            PRIMARY KEY (kind, name)
        );
        """,
    ),
    (
        "commit times in the change feed (readers measure their sync lag from them)",
        """
        ALTER TABLE mpt_families ADD COLUMN committed_at DOUBLE PRECISION;
        ALTER TABLE mpt_tasks ADD COLUMN committed_at DOUBLE PRECISION;
        ALTER TABLE mpt_tombstones ADD COLUMN committed_at DOUBLE PRECISION;
        """,
    ),
    (
        "training jobs (see prompts_store.job_queue)",
        """
        CREATE TABLE mpt_jobs (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            task TEXT COLLATE "C" NOT NULL,
            family TEXT COLLATE "C" NOT NULL,
            mode TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
            examples INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            timeout_s DOUBLE PRECISION NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            steps INTEGER NOT NULL,
            step INTEGER NOT NULL,
            worker TEXT,
            lease_s DOUBLE PRECISION,
            heartbeat_at DOUBLE PRECISION,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            loss DOUBLE PRECISION,
            dev TEXT,
            error TEXT,
            cancel_requested INTEGER NOT NULL,
            spec TEXT NOT NULL
        );
        CREATE INDEX mpt_jobs_status ON mpt_jobs (status, family);
        CREATE INDEX mpt_jobs_task ON mpt_jobs (task, id);
        """,
    ),
]

LATEST = len(MIGRATIONS)


# Read through pg_class with the statement's snapshot, not to_regclass(): that one answers from the
# backend's catalog cache, which can still hold "no such table" from before another replica's
# migration committed (it is refreshed only when a relation is locked), and the second replica
# would then try to create the tables again.
_HAS_TABLE = """
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                   WHERE c.relname = 'mpt_schema_version' AND n.nspname = current_schema())
"""


def schema_version(conn) -> int:
    """The schema version of the connected database (0 when it has no store yet)."""
    return read_version(conn, _HAS_TABLE, "mpt_schema_version")


def migrate(conn, where: str) -> int:
    """Bring the schema to :data:`LATEST`; returns the number of migrations applied (0 when current).

    ``conn`` is a psycopg connection in autocommit mode.
    """
    if checked(schema_version(conn), LATEST, where) == LATEST:
        return 0  # the common case takes no lock
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        current = checked(schema_version(conn), LATEST, where)  # another replica may have migrated meanwhile
        if current == 0:
            conn.execute("CREATE TABLE mpt_schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL)")
        return apply_migrations(conn.execute, MIGRATIONS, current, "mpt_schema_version", "%s")
