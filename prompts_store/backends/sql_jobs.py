"""The job rows of the two SQL backends: one implementation of :class:`.transaction.JobTransaction`
and of the job reads, over a DB-API connection (``sqlite3`` or psycopg), parameterised by the
table's name, the driver's parameter marker and whether the database locks rows (PostgreSQL:
``FOR UPDATE``, and ``SKIP LOCKED`` so concurrent claimers never wait on each other's row)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ..jobs import ACTIVE, Job, JobSpec

# The columns of a Job, in the dataclass's order (its spec is read separately, when wanted).
JOB_COLS = (
    "id, task, family, mode, status, examples, attempts, max_attempts, timeout_s, created_at, steps, step, "
    "worker, lease_s, heartbeat_at, started_at, finished_at, loss, dev, error, cancel_requested"
)
WRITABLE = frozenset(JOB_COLS.split(", ")[1:]) | {"spec"}
_ACTIVE = ", ".join(f"'{s}'" for s in ACTIVE)


def job_from_row(row: tuple, spec: str | None = None) -> Job:
    """A ``JOB_COLS`` row (+ its spec's JSON) as a Job."""
    *head, dev, error, cancel = row
    return Job(
        *head,
        dev=None if dev is None else json.loads(dev),
        error=error,
        cancel_requested=bool(cancel),
        spec=None if spec is None else JobSpec.from_json(spec),
    )


@dataclass(frozen=True)
class JobSql:
    """The queries of one backend: ``table`` (``jobs`` / ``mpt_jobs``), ``mark`` (``?`` / ``%s``),
    ``locking`` (whether ``FOR UPDATE [SKIP LOCKED]`` exist)."""

    table: str
    mark: str
    locking: bool
    clock: str | None = None  # SQL for "now" in Unix seconds where the database has the clock

    def select(self, where: str, spec: bool = False) -> str:
        return f"SELECT {JOB_COLS}{', spec' if spec else ''} FROM {self.table} WHERE {where}"

    def get(self, execute, job_id: int) -> Job | None:
        row = execute(self.select(f"id = {self.mark}", spec=True), (job_id,)).fetchone()
        return None if row is None else job_from_row(row[:-1], row[-1])

    def page(self, execute, task: str | None, status: str | None, after: int | None, limit: int | None) -> list[Job]:
        where, params = [f"id > {self.mark}"], [after or 0]
        for col, value in (("task", task), ("status", status)):
            if value is not None:
                where.append(f"{col} = {self.mark}")
                params.append(value)
        query = self.select(" AND ".join(where)) + " ORDER BY id"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        return [job_from_row(r) for r in execute(query, params).fetchall()]

    def claimable(self, execute, now: float) -> bool:
        """Whether a claim could find work: a queued job, or a running one past its lease or timeout."""
        m = self.clock or self.mark
        query = (
            f"SELECT 1 FROM {self.table} WHERE status = 'queued' OR (status = 'running' AND "
            f"(heartbeat_at + lease_s < {m} OR started_at + timeout_s + lease_s < {m})) LIMIT 1"
        )
        return execute(query, () if self.clock else (now, now)).fetchone() is not None


class SqlJobTransaction:
    """Mixin of a backend's write transaction: the job operations over ``self.c`` with ``self.jobs``
    (a :class:`JobSql`). The rules are checked by :mod:`.job_queue` before these run."""

    c: object
    jobs: JobSql

    def _run(self, query: str, params=()):
        return self.c.execute(query, params)

    def clock(self) -> float:
        return time.time()

    def lock_submissions(self) -> None:
        pass  # SQLite: the transaction is the database's one writer already

    def insert_job(self, fields: dict) -> int:
        cols = _checked(fields)
        marks = ", ".join([self.jobs.mark] * len(cols))
        query = f"INSERT INTO {self.jobs.table} ({', '.join(cols)}) VALUES ({marks}) RETURNING id"
        return int(self._run(query, [_value(fields[c]) for c in cols]).fetchone()[0])

    def read_job(self, job_id: int, lock: bool = False) -> Job | None:
        query = self.jobs.select(f"id = {self.jobs.mark}", spec=True)
        if lock and self.jobs.locking:
            query += " FOR UPDATE"
        row = self._run(query, (job_id,)).fetchone()
        return None if row is None else job_from_row(row[:-1], row[-1])

    def update_job(self, job_id: int, fields: dict, holder: str | None = None) -> bool:
        cols, m = _checked(fields), self.jobs.mark
        query = f"UPDATE {self.jobs.table} SET {', '.join(f'{c} = {m}' for c in cols)} WHERE id = {m}"
        params = [_value(fields[c]) for c in cols] + [job_id]
        if holder is not None:
            query += f" AND status = 'running' AND worker = {m}"
            params.append(holder)
        return self._run(query, params).rowcount > 0

    def active_job(self, task: str) -> int | None:
        m = self.jobs.mark
        row = self._run(
            f"SELECT id FROM {self.jobs.table} WHERE task = {m} AND status IN ({_ACTIVE}) ORDER BY id LIMIT 1", (task,)
        ).fetchone()
        return None if row is None else int(row[0])

    def count_active(self, family: str | None) -> int:
        query = f"SELECT count(*) FROM {self.jobs.table} WHERE status IN ({_ACTIVE})"
        if family is None:
            return int(self._run(query).fetchone()[0])
        return int(self._run(query + f" AND family = {self.jobs.mark}", (family,)).fetchone()[0])

    def next_queued(self) -> int | None:
        query = f"SELECT id FROM {self.jobs.table} WHERE status = 'queued' ORDER BY id LIMIT 1"
        if self.jobs.locking:
            query += " FOR UPDATE SKIP LOCKED"
        row = self._run(query).fetchone()
        return None if row is None else int(row[0])

    def expired(self, now: float) -> list[Job]:
        m = self.jobs.mark
        query = self.jobs.select(
            f"status = 'running' AND (heartbeat_at + lease_s < {m} OR started_at + timeout_s + lease_s < {m})"
        )
        if self.jobs.locking:
            query += " FOR UPDATE SKIP LOCKED"
        return [job_from_row(r) for r in self._run(query, (now, now)).fetchall()]


def _checked(fields: dict) -> list[str]:
    """The column names of ``fields`` (written by this package only; refused when unknown)."""
    unknown = set(fields) - WRITABLE
    if unknown:
        raise ValueError(f"not job columns: {sorted(unknown)}")
    return list(fields)


def _value(value: object) -> object:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, JobSpec):
        return value.to_json()
    return value
