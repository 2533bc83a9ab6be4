"""The embedded default backend: one SQLite file (the standard library's ``sqlite3``).

WAL journal and ``synchronous=FULL``: a committed write survives ``kill -9`` and power loss, readers
never block the writer. Several processes on one host share the file (servers, the training CLI,
trainer workers); writers are serialised by ``BEGIN IMMEDIATE`` (waiting up to ``busy_timeout_s``).
Each thread gets its own connection; a forked child opens fresh ones.

Tables (see :mod:`.sqlite_schema`): ``families`` and ``tasks`` (metadata columns, then the tensors
as little-endian float32 blobs), ``tombstones`` (one row per deleted name, removed when the name is
written again), ``meta`` (the sequence, bumped in each write transaction), ``jobs`` (training jobs:
:mod:`.job_queue`; claims are atomic because ``BEGIN IMMEDIATE`` admits one writer), ``schema_version``.
Every row also records ``committed_at``, the writer's clock when its transaction took its sequence.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from mpt_core.errors import NotFound, StoreError

from ..blobs import TaskChunkBuilder
from ..job_queue import JobQueue
from ..records import TaskChunk
from ..store import Store
from ..transaction import Transaction
from .sql_jobs import JobSql, SqlJobTransaction
from .sql_rows import TASK_COLS
from .sql_store import Read, SqlReads, SqlTransaction, StoreSql
from .sqlite_schema import migrate, schema_version

_IN_BATCH = 500  # names per "IN (...)" query, well under SQLite's variable limit
_JOBS = JobSql("jobs", "?", locking=False)
_SQL = StoreSql(prefix="", mark="?", unlimited=-1)


class SQLiteStore(SqlReads, Store, JobQueue):
    backend = "sqlite"
    sql = _SQL

    def __init__(self, path: str | os.PathLike, create: bool = True, busy_timeout_s: float = 30.0):
        self.path = Path(path)
        super().__init__(f"sqlite:///{self.path}")
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory: open it as a directory store, not sqlite:///")
        if not self.path.exists():
            if not create:
                raise NotFound(f"no prompt store at {self.path}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._conns: list[tuple[int, sqlite3.Connection]] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        try:
            migrate(self._conn(), str(self.path))
        except sqlite3.DatabaseError as e:
            self.close()
            raise StoreError(f"{self.path}: not a usable SQLite prompt store ({e})") from None

    # ---- connections --------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False)
        deadline = time.monotonic() + self.busy_timeout_s
        while True:  # switching a fresh file to WAL can report "locked" without waiting on the busy handler
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    conn.close()
                    raise
                time.sleep(0.01)
        if str(mode).lower() != "wal":
            conn.close()
            raise StoreError(f"{self.path}: cannot use WAL journaling (got {mode!r}); is it on a network filesystem?")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self.url} is closed")
        pid = os.getpid()
        if getattr(self._local, "pid", None) != pid:
            self._local.conn, self._local.pid = self._connect(), pid
            with self._conns_lock:
                self._conns.append((pid, self._local.conn))
        return self._local.conn

    def close(self) -> None:
        self._closed = True
        with self._conns_lock:
            mine = [c for pid, c in self._conns if pid == os.getpid()]
            self._conns = []
        for c in mine:
            c.close()

    @contextlib.contextmanager
    def _snapshot_reads(self) -> Iterator[Read]:
        """Several reads that see one consistent state."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield lambda query, params: conn.execute(query, params).fetchall()
        finally:
            conn.execute("COMMIT")

    def _read(self, query: str, params: Sequence = ()) -> list[tuple]:
        return self._conn().execute(query, params).fetchall()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StoreError(f"{self.url}: could not start a write ({e}); another writer held it too long") from None
        try:
            yield _SQLiteTransaction(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _jobs(self) -> contextlib.AbstractContextManager[_SQLiteTransaction]:
        return self._transaction()  # SQLite has one writer: job rows take the same BEGIN IMMEDIATE

    def _job_reads(self) -> tuple[JobSql, object]:
        return _JOBS, self._conn().execute

    def schema_version(self) -> int:
        return schema_version(self._conn())

    # ---- reads (the rest: sql_store.SqlReads) -------------------------------------------------
    def _task_chunks(self, chunk_size: int) -> Iterator[TaskChunk]:
        conn = self._connect()  # its own connection: one read snapshot, whatever the caller does between chunks
        try:
            conn.execute("BEGIN")
            cursor = conn.execute("SELECT name, family, l, d, rank, created_at, source, u, v FROM tasks")
            builder = TaskChunkBuilder(chunk_size)
            while rows := cursor.fetchmany(min(chunk_size, 16_384)):
                yield from builder.add_block(*zip(*rows))  # columns, transposed in C
            yield from builder.flush()
        finally:
            conn.close()

    def _storage(self) -> dict:
        files = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        return {"path": str(self.path), "disk_bytes": sum(p.stat().st_size for p in files if p.exists())}


class _SQLiteTransaction(SqlTransaction, Transaction, SqlJobTransaction):
    jobs, sql = _JOBS, _SQL

    def __init__(self, conn: sqlite3.Connection):
        self.c = conn
        self.now = time.time()

    def existing_tasks(self, names: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(names), _IN_BATCH):
            batch = list(names[i : i + _IN_BATCH])
            marks = ",".join("?" * len(batch))
            found.update(r[0] for r in self.c.execute(f"SELECT name FROM tasks WHERE name IN ({marks})", batch))
        return found

    def bump(self, n: int) -> int:
        seq = self.c.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0]
        self.c.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq + n,))
        self.now = time.time()  # the commit time readers measure their lag from
        return seq + 1

    def _write_task_rows(self, rows: Iterable[tuple], names: Sequence[str]) -> None:
        self.c.executemany(self.sql.upsert("tasks", TASK_COLS + ", committed_at", "name"), rows)
        if self.c.execute("SELECT 1 FROM tombstones WHERE kind = 'task' LIMIT 1").fetchone():
            self.c.executemany("DELETE FROM tombstones WHERE kind = 'task' AND name = ?", ((x,) for x in names))
