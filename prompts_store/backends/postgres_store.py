"""The backend for replicas on many hosts: one PostgreSQL database (psycopg 3, the ``postgres`` extra).

Writers are serialised by locking the sequence row (``SELECT ... FOR UPDATE`` on ``mpt_meta``) as
the first statement of every write transaction: the rules are checked and the sequence taken under
that lock, and the lock is released only at commit, so commits follow sequence order (a reader that
sees ``S`` sees everything below ``S``; the store docstring's rule 4). Each write transaction also
sends ``NOTIFY mpt_store, '<new head>'``, which PostgreSQL delivers at commit: :meth:`subscribe`
wakes readers at once (polling stays their fallback). Training jobs (``mpt_jobs``, :mod:`.job_queue`)
take no sequence lock: rows are locked one by one, claims with ``FOR UPDATE SKIP LOCKED``, and
leases are timed by the database server's clock. A commit is acknowledged once PostgreSQL has
made it durable (``synchronous_commit`` as the server sets it; keep it ``on``).

Each thread gets its own connection (autocommit; explicit transactions); a broken one is replaced
at the next call. Bulk reads go through a server-side cursor on a connection of their own, in one
REPEATABLE READ snapshot, fetched in blocks and stacked without a Python object per row.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

from mpt_core.errors import NotFound, StoreError

from ..blobs import TaskChunkBuilder
from ..job_queue import JobQueue
from ..records import TaskChunk
from ..store import Store
from ..transaction import Transaction
from .postgres_listen import CHANNEL, Listener
from .postgres_schema import migrate, schema_version
from .sql_jobs import JobSql, SqlJobTransaction
from .sql_rows import TASK_COLS
from .sql_store import Read, SqlReads, SqlTransaction, StoreSql

FETCH = 16_384  # rows per round trip of a bulk read
JOBS_LOCK = 0x6D70745F6A6F6273  # "mpt_jobs": the advisory lock that serialises job submissions
_JOBS = JobSql("mpt_jobs", "%s", locking=True, clock="extract(epoch FROM clock_timestamp())")
_SQL = StoreSql(prefix="mpt_", mark="%s", unlimited=None)


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "the PostgreSQL store needs psycopg 3: pip install 'mpt-serve[postgres]' (psycopg[binary])"
        ) from None
    return psycopg


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def redact(url: str) -> str:
    """``url`` without its password (for logs, stats and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresStore(SqlReads, Store, JobQueue):
    backend = "postgresql"
    sql = _SQL

    def __init__(self, url: str, create: bool = True, lock_timeout_s: float = 30.0, connect_timeout_s: int = 10):
        self._psycopg = _psycopg()
        super().__init__(redact(url))
        self._conninfo = url
        self.lock_timeout_s, self.connect_timeout_s = lock_timeout_s, connect_timeout_s
        self._local = threading.local()
        self._conns: list[tuple[int, object]] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        self._listener = Listener(self._connect, self.url)
        try:
            conn = self._conn()
            with self._errors():
                if not create and schema_version(conn) == 0:
                    raise NotFound(f"no prompt store in {self.url} (run `mpt store init` to create one)")
                migrate(conn, self.url)
        except BaseException:
            self.close()
            raise

    # ---- connections --------------------------------------------------------------------------
    def _connect(self):
        try:
            conn = self._psycopg.connect(self._conninfo, autocommit=True, connect_timeout=self.connect_timeout_s)
        except self._psycopg.Error as e:
            raise StoreError(f"{self.url}: cannot connect to PostgreSQL ({_one_line(e)})") from None
        conn.execute(f"SET lock_timeout = {int(self.lock_timeout_s * 1000)}")
        return conn

    def _conn(self):
        if self._closed:
            raise StoreError(f"{self.url} is closed")
        conn, pid = getattr(self._local, "conn", None), os.getpid()
        if conn is None or getattr(self._local, "pid", None) != pid or conn.closed or conn.broken:
            conn = self._local.conn = self._connect()
            self._local.pid = pid
            with self._conns_lock:
                self._conns.append((pid, conn))
        return conn

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._conns_lock:
            mine = [c for pid, c in self._conns if pid == os.getpid()]
            self._conns = []
        for c in mine:
            with contextlib.suppress(Exception):
                c.close()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Database failures (a lost connection, a lock timeout) as StoreError naming the store."""
        try:
            yield
        except self._psycopg.errors.LockNotAvailable:
            raise StoreError(f"{self.url}: another writer held the store longer than {self.lock_timeout_s}s") from None
        except self._psycopg.OperationalError as e:
            raise StoreError(f"{self.url}: database unavailable ({_one_line(e)})") from None

    @contextlib.contextmanager
    def _snapshot(self, conn=None) -> Iterator[object]:
        """Several reads that see one consistent state."""
        conn = conn or self._conn()
        with self._errors(), conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        conn = self._conn()
        with self._errors(), conn.transaction():
            # the writers' lock, first: rules are checked and the sequence taken under it (rule 4)
            seq = conn.execute("SELECT value FROM mpt_meta WHERE key = 'seq' FOR UPDATE").fetchone()[0]
            tx = _PostgresTransaction(conn, seq)
            yield tx
            if tx.head != seq:  # delivered at commit, in commit order
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(tx.head)))

    @contextlib.contextmanager
    def _jobs(self) -> Iterator[_PostgresTransaction]:
        """Job rows only: no sequence lock (a heartbeat never waits on an upload); rows are locked
        one by one (``FOR UPDATE``, claims ``SKIP LOCKED``), submissions by an advisory lock."""
        conn = self._conn()
        with self._errors(), conn.transaction():
            yield _PostgresTransaction(conn, None)

    def _job_reads(self) -> tuple[JobSql, object]:
        def execute(query: str, params: Sequence = ()):
            with self._errors():
                return self._conn().execute(query, params)

        return _JOBS, execute

    def _read(self, query: str, params: Sequence | None = None) -> list[tuple]:
        with self._errors():  # params None: the query is sent as it is (a literal % stays one)
            return self._conn().execute(query, params, binary=True).fetchall()  # bytea arrives as bytes

    @contextlib.contextmanager
    def _snapshot_reads(self) -> Iterator[Read]:
        with self._snapshot() as conn:
            yield lambda query, params: conn.execute(query, params, binary=True).fetchall()

    def schema_version(self) -> int:
        with self._errors():
            return schema_version(self._conn())

    def subscribe(self, callback: Callable[[int | None], None]) -> Callable[[], None]:
        """Call ``callback(head)`` from a listener thread after every commit by any process (LISTEN/NOTIFY)."""
        if self._closed:
            raise StoreError(f"{self.url} is closed")
        return self._listener.subscribe(callback)

    # ---- reads (the rest: sql_store.SqlReads) -------------------------------------------------
    def _task_chunks(self, chunk_size: int) -> Iterator[TaskChunk]:
        conn = self._connect()  # its own connection: one snapshot, whatever the caller does between chunks
        try:
            with self._snapshot(conn):
                cursor = conn.cursor(name="mpt_bulk_tasks", binary=True)  # server-side; bytea arrives as bytes
                cursor.execute("SELECT name, family, l, d, rank, created_at, source, u, v FROM mpt_tasks")
                builder = TaskChunkBuilder(chunk_size)
                while rows := cursor.fetchmany(min(chunk_size, FETCH)):
                    yield from builder.add_block(*zip(*rows))  # columns, transposed in C
                yield from builder.flush()
                cursor.close()
        finally:
            conn.close()

    def _storage(self) -> dict:
        rows = self._read(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relkind = 'r' AND c.relname LIKE 'mpt\\_%' AND pg_table_is_visible(c.oid)"
        )
        return {"database": self._read("SELECT current_database()")[0][0], "disk_bytes": int(rows[0][0])}


class _PostgresTransaction(SqlTransaction, Transaction, SqlJobTransaction):
    jobs, sql = _JOBS, _SQL

    def __init__(self, conn, seq: int | None):
        self.c, self.head = conn, seq  # seq None: a job-only transaction, which takes no sequence
        self.now = time.time()  # the commit time readers measure their lag from (the writer's clock)

    def clock(self) -> float:
        """The database server's clock: workers on several hosts agree on leases whatever theirs say."""
        return float(self.c.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0])

    def lock_submissions(self) -> None:
        self.c.execute("SELECT pg_advisory_xact_lock(%s)", (JOBS_LOCK,))

    def existing_tasks(self, names: Sequence[str]) -> set[str]:
        rows = self.c.execute("SELECT name FROM mpt_tasks WHERE name = ANY(%s)", (list(names),))
        return {r[0] for r in rows}

    def bump(self, n: int) -> int:
        first = self.head + 1
        self.head = self.c.execute(
            "UPDATE mpt_meta SET value = value + %s WHERE key = 'seq' RETURNING value", (n,)
        ).fetchone()[0]
        self.now = time.time()
        return first

    def _write_task_rows(self, rows: Iterable[tuple], names: Sequence[str]) -> None:
        with self.c.cursor() as cur:
            cur.executemany(self.sql.upsert("tasks", TASK_COLS + ", committed_at", "name"), rows)
        self.c.execute("DELETE FROM mpt_tombstones WHERE kind = 'task' AND name = ANY(%s)", (list(names),))
