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
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .artifacts import Family, Task
from .blobs import TaskChunkBuilder, family_chunks, to_blob
from .errors import InvalidArtifact, NotFound, StoreError
from .records import Change, FamilyChunk, FamilyInfo, TaskChunk, TaskInfo
from .sql_jobs import JobSql, SqlJobTransaction
from .sql_rows import FAMILY_COLS, TASK_COLS, TASK_INFO_COLS, family_from_row, task_from_row, upsert
from .sqlite_schema import migrate, schema_version
from .store import Store
from .transaction import Transaction

_IN_BATCH = 500  # names per "IN (...)" query, well under SQLite's variable limit
_JOBS = JobSql("jobs", "?", locking=False)


def _upsert(table: str, cols: str, key: str) -> str:
    return upsert(table, cols, key, mark="?")


class SQLiteStore(Store):
    backend = "sqlite"

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
    def _read_snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that see one consistent state."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

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

    # ---- reads ---------------------------------------------------------------------------------
    def head(self) -> int:
        return int(self._conn().execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])

    def _changes(self, since: int, limit: int | None) -> list[Change]:
        lim = -1 if limit is None else limit
        with self._read_snapshot() as c:
            fams = c.execute(
                f"SELECT {FAMILY_COLS}, committed_at FROM families WHERE seq > ? ORDER BY seq LIMIT ?", (since, lim)
            ).fetchall()
            tasks = c.execute(
                f"SELECT {TASK_COLS}, committed_at FROM tasks WHERE seq > ? ORDER BY seq LIMIT ?", (since, lim)
            ).fetchall()
            tombs = c.execute(
                "SELECT seq, kind, name, committed_at FROM tombstones WHERE seq > ? ORDER BY seq LIMIT ?", (since, lim)
            ).fetchall()
        merged = [(r[6], "family", r[:-1], r[-1]) for r in fams] + [(r[7], "task", r[:-1], r[-1]) for r in tasks]
        merged += [(seq, kind, name, at) for seq, kind, name, at in tombs]
        merged.sort(key=lambda e: e[0])
        if limit is not None:
            merged = merged[:limit]
        out = []
        for seq, kind, row, at in merged:
            if isinstance(row, str):
                out.append(Change(seq, kind, row, None, committed_at=at))
                continue
            try:
                out.append(
                    Change(
                        seq,
                        kind,
                        row[0],
                        family_from_row(row) if kind == "family" else task_from_row(row),
                        committed_at=at,
                    )
                )
            except InvalidArtifact as e:
                out.append(Change(seq, kind, row[0], None, str(e), committed_at=at))
        return out

    def _get_family(self, name: str) -> Family | None:
        row = self._conn().execute(f"SELECT {FAMILY_COLS} FROM families WHERE name = ?", (name,)).fetchone()
        return None if row is None else family_from_row(row)

    def _get_task(self, name: str) -> Task | None:
        row = self._conn().execute(f"SELECT {TASK_COLS} FROM tasks WHERE name = ?", (name,)).fetchone()
        return None if row is None else task_from_row(row)

    def _family_info(self, name: str) -> FamilyInfo | None:
        row = (
            self._conn()
            .execute("SELECT name, l, d, fingerprint, created_at, source, seq FROM families WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else FamilyInfo(*row[:3], json.loads(row[3]), *row[4:])

    def _task_info(self, name: str) -> TaskInfo | None:
        row = self._conn().execute(f"SELECT {TASK_INFO_COLS} FROM tasks WHERE name = ?", (name,)).fetchone()
        return None if row is None else TaskInfo(*row)

    def _list_families(self, after: str | None, limit: int | None) -> list[str]:
        rows = self._conn().execute(
            "SELECT name FROM families WHERE name > ? ORDER BY name LIMIT ?",
            ("" if after is None else after, -1 if limit is None else limit),
        )
        return [r[0] for r in rows]

    def _list_tasks(self, after: str | None, limit: int | None, family: str | None) -> list[str]:
        params: list = ["" if after is None else after]
        where = "name > ?"
        if family is not None:
            where = "family = ? AND " + where
            params.insert(0, family)
        params.append(-1 if limit is None else limit)
        rows = self._conn().execute(f"SELECT name FROM tasks WHERE {where} ORDER BY name LIMIT ?", params)
        return [r[0] for r in rows]

    def count_families(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM families").fetchone()[0])

    def _count_tasks(self, family: str | None) -> int:
        if family is None:
            return int(self._conn().execute("SELECT count(*) FROM tasks").fetchone()[0])
        return int(self._conn().execute("SELECT count(*) FROM tasks WHERE family = ?", (family,)).fetchone()[0])

    def _family_chunks(self) -> Iterator[FamilyChunk]:
        rows = self._conn().execute("SELECT name, fingerprint, l, d, created_at, source, shared FROM families")
        yield from family_chunks([(r[0], json.loads(r[1]), *r[2:]) for r in rows])

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

    def _task_totals(self) -> dict[str, tuple[int, int]]:
        rows = self._conn().execute("SELECT family, count(*), sum((l + d) * rank * 4) FROM tasks GROUP BY family")
        return {f: (int(n), int(b)) for f, n, b in rows}

    def _storage(self) -> dict:
        files = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        return {"path": str(self.path), "disk_bytes": sum(p.stat().st_size for p in files if p.exists())}


class _SQLiteTransaction(Transaction, SqlJobTransaction):
    jobs = _JOBS

    def __init__(self, conn: sqlite3.Connection):
        self.c = conn
        self.now = time.time()

    def read_family(self, name: str) -> Family | None:
        row = self.c.execute(f"SELECT {FAMILY_COLS} FROM families WHERE name = ?", (name,)).fetchone()
        return None if row is None else family_from_row(row)

    def existing_tasks(self, names: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(names), _IN_BATCH):
            batch = list(names[i : i + _IN_BATCH])
            marks = ",".join("?" * len(batch))
            found.update(r[0] for r in self.c.execute(f"SELECT name FROM tasks WHERE name IN ({marks})", batch))
        return found

    def family_users(self, name: str, examples: int) -> tuple[int, list[str]]:
        n = self.c.execute("SELECT count(*) FROM tasks WHERE family = ?", (name,)).fetchone()[0]
        some = self.c.execute("SELECT name FROM tasks WHERE family = ? ORDER BY name LIMIT ?", (name, examples))
        return int(n), [r[0] for r in some]

    def bump(self, n: int) -> int:
        seq = self.c.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0]
        self.c.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq + n,))
        self.now = time.time()  # the commit time readers measure their lag from
        return seq + 1

    def write_family(self, family: Family, seq: int) -> None:
        self.c.execute(
            _upsert("families", FAMILY_COLS + ", committed_at", "name"),
            (
                family.name,
                family.length,
                family.d,
                json.dumps(family.fingerprint, sort_keys=True),
                family.created_at,
                family.source,
                seq,
                to_blob(family.shared),
                self.now,
            ),
        )
        self.c.execute("DELETE FROM tombstones WHERE kind = 'family' AND name = ?", (family.name,))

    def write_tasks(self, tasks: Sequence[Task], first_seq: int) -> None:
        self.c.executemany(
            _upsert("tasks", TASK_COLS + ", committed_at", "name"),
            (
                (t.name, t.family, t.rank, t.u.shape[0], t.v.shape[0], t.created_at, t.source, first_seq + i)
                + (to_blob(t.u), to_blob(t.v), self.now)
                for i, t in enumerate(tasks)
            ),
        )
        if self.c.execute("SELECT 1 FROM tombstones WHERE kind = 'task' LIMIT 1").fetchone():
            self.c.executemany("DELETE FROM tombstones WHERE kind = 'task' AND name = ?", ((t.name,) for t in tasks))

    def write_task_chunk(self, chunk: TaskChunk, first_seq: int) -> None:
        """The stack's bytes sliced per row: no tensor and no Task object per row."""
        n, l, d, r = len(chunk), chunk.l, chunk.d, chunk.rank
        u, v = memoryview(to_blob(chunk.u.reshape(n * l, r))), memoryview(to_blob(chunk.v.reshape(n * d, r)))
        su, sv = l * r * 4, d * r * 4
        self.c.executemany(
            _upsert("tasks", TASK_COLS + ", committed_at", "name"),
            (
                (chunk.names[i], chunk.families[i], r, l, d, chunk.created_at[i], chunk.source[i], first_seq + i)
                + (u[i * su : (i + 1) * su], v[i * sv : (i + 1) * sv], self.now)
                for i in range(n)
            ),
        )
        if self.c.execute("SELECT 1 FROM tombstones WHERE kind = 'task' LIMIT 1").fetchone():
            self.c.executemany("DELETE FROM tombstones WHERE kind = 'task' AND name = ?", ((x,) for x in chunk.names))

    def delete_family(self, name: str, seq: int) -> None:
        self.c.execute("DELETE FROM families WHERE name = ?", (name,))
        self._tombstone("family", name, seq)

    def delete_task(self, name: str, seq: int) -> None:
        self.c.execute("DELETE FROM tasks WHERE name = ?", (name,))
        self._tombstone("task", name, seq)

    def _tombstone(self, kind: str, name: str, seq: int) -> None:
        self.c.execute(
            _upsert("tombstones", "kind, name, seq, committed_at", "kind, name"), (kind, name, seq, self.now)
        )
