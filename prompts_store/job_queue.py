r"""The training-job queue: an interface of its own beside :class:`.store.Store`, its rules held
once for every backend. A backend implements both: the SQL backends supply
:class:`.transaction.JobTransaction`\ s, a directory store has no job table and says so
(:class:`JobsUnsupported`, from :func:`no_jobs`).

- **submit** checks, in ONE transaction with submissions serialised: the family exists, the task
  (and for mode ``full`` a family of that name) does not unless the spec says ``overwrite``, no
  other job is training that task, and the concurrency limits (jobs queued or running, per
  family and in total) are not reached (:class:`JobLimit`).
- **claim** is atomic: one claimer wins a job (SQLite: its one writer; PostgreSQL: ``FOR UPDATE
  SKIP LOCKED``). It first expires running jobs whose worker stopped heartbeating for longer than
  its lease (requeued while attempts are left, else failed; cancelled when a cancel was asked)
  or that ran past their timeout (failed).
- **progress** (also the heartbeat) answers whether a cancel was requested; a worker that lost
  its job (requeued, finished by someone else) gets :class:`JobLost` and must drop its result.
- **finish** ``succeeded`` writes the task (and family) through the store's write rules AND marks
  the job succeeded in ONE transaction: succeeded ⇔ the task is written, and every server serves
  it through the change feed like an upload. When the result cannot be written (a name taken
  meanwhile, the family reshaped), the job fails with that reason. A cancel requested before the
  finish wins: the job ends cancelled and nothing is written.
"""

from __future__ import annotations

import contextlib
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from mpt_core.artifacts import Family, Task
from mpt_core.errors import Conflict, InvalidArtifact, JobLimit, JobLost, JobsUnsupported, NotFound
from mpt_core.names import validate_name

from .backends.sql_jobs import JobSql
from .jobs import FINISHED, MODES, STATUSES, Job, JobSpec, finite_or_none
from .transaction import JobTransaction

MAX_WORKER_ID = 200


def no_jobs(url: str) -> JobsUnsupported:
    """The answer of a backend without a job table to every job operation."""
    return JobsUnsupported(
        f"{url}: training jobs need a database store (sqlite:///PATH or postgresql://...); "
        "a directory store has no job table"
    )


class JobQueue(ABC):
    """The job operations (see the module docstring). A backend subclasses it beside
    :class:`.store.Store`, whose write transaction a succeeded job's result goes through."""

    url: str

    # ---- what a backend implements ----------------------------------------------------------------
    @abstractmethod
    def _jobs(self) -> contextlib.AbstractContextManager[JobTransaction]:
        """A write transaction for job rows only (PostgreSQL: without the store's sequence lock)."""

    @abstractmethod
    def _job_reads(self) -> tuple[JobSql, Callable]:
        """``(queries, execute)`` for reads outside a transaction."""

    # ---- what the store beside it supplies ----------------------------------------------------------
    @abstractmethod
    def _transaction(self):  # -> ContextManager[Transaction]
        """The store's write transaction: a finished job's task is written under the store's rules."""

    @abstractmethod
    def _write_family(self, tx, family: Family, overwrite: bool) -> int: ...

    @abstractmethod
    def _write_tasks(self, tx, tasks: list[Task], overwrite: bool) -> int: ...

    # ---- submit, read, list, cancel -------------------------------------------------------------
    def submit_job(
        self,
        task: str,
        family: str,
        mode: str,
        spec: JobSpec,
        max_attempts: int = 3,
        timeout_s: float = 600.0,
        max_active: int | None = None,
        max_active_per_family: int | None = None,
    ) -> Job:
        """Queue a job to train ``task`` from ``family`` (see the module docstring for the checks)."""
        validate_name(task, "task")
        validate_name(family, "family")
        if mode not in MODES:
            raise InvalidArtifact(f"mode={mode!r} must be one of {', '.join(MODES)}")
        if not isinstance(spec, JobSpec):
            raise InvalidArtifact(f"expected a JobSpec, got {type(spec).__name__}")
        if not (isinstance(max_attempts, int) and max_attempts >= 1):
            raise ValueError(f"max_attempts={max_attempts!r} must be an integer >= 1")
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ValueError(f"timeout_s={timeout_s!r} must be a positive number of seconds")
        with self._jobs() as tx:
            tx.lock_submissions()
            if tx.read_family(family) is None:
                raise NotFound(f"family {family!r} does not exist")
            if not spec.overwrite:
                if tx.existing_tasks([task]):
                    raise Conflict(f"task {task!r} already exists; set overwrite to replace it")
                if mode == "full" and tx.read_family(task) is not None:
                    raise Conflict(f"family {task!r} already exists (mode full writes one); set overwrite")
            running = tx.active_job(task)
            if running is not None:
                raise Conflict(f"job {running} is already training task {task!r}; cancel it or wait for it")
            if max_active is not None and (n := tx.count_active(None)) >= max_active:
                raise JobLimit(f"{n} jobs are queued or running, the most this store takes", "total", max_active)
            if max_active_per_family is not None and (n := tx.count_active(family)) >= max_active_per_family:
                raise JobLimit(
                    f"family {family!r} has {n} jobs queued or running, the most it takes",
                    "family",
                    max_active_per_family,
                )
            now = tx.clock()
            fields = {
                "task": task,
                "family": family,
                "mode": mode,
                "spec": spec,
                "examples": len(spec.examples),
                "status": "queued",
                "attempts": 0,
                "max_attempts": max_attempts,
                "timeout_s": float(timeout_s),
                "created_at": now,
                "steps": spec.steps,
                "step": 0,
                "cancel_requested": False,
            }
            return tx.read_job(tx.insert_job(fields))

    def get_job(self, job_id: int) -> Job:
        """The job with its spec; :class:`NotFound` when there is none."""
        sql, execute = self._job_reads()
        job = sql.get(execute, _job_id(job_id))
        if job is None:
            raise NotFound(f"job {job_id} does not exist")
        return job

    def list_jobs(
        self, task: str | None = None, status: str | None = None, after: int | None = None, limit: int | None = None
    ) -> list[Job]:
        """Jobs by id (oldest first), those after ``after`` (exclusive), at most ``limit``; of ``task``
        and in ``status`` when given. Without their specs."""
        if task is not None:
            validate_name(task, "task")
        if status is not None and status not in STATUSES:
            raise InvalidArtifact(f"status={status!r} must be one of {', '.join(STATUSES)}")
        if after is not None:
            _job_id(after, allow_zero=True)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
        sql, execute = self._job_reads()
        return sql.page(execute, task, status, after, limit)

    def cancel_job(self, job_id: int) -> Job:
        """A queued job is cancelled at once; a running one gets ``cancel_requested`` and its worker
        stops at its next step. :class:`Conflict` when it has already finished."""
        job_id = _job_id(job_id)
        with self._jobs() as tx:
            job = tx.read_job(job_id, lock=True)
            if job is None:
                raise NotFound(f"job {job_id} does not exist")
            if job.status in FINISHED:
                raise Conflict(f"job {job_id} has already finished: {job.status}")
            if job.status == "queued":
                tx.update_job(job_id, {"status": "cancelled", "finished_at": tx.clock(), "error": "cancelled"})
            else:
                tx.update_job(job_id, {"cancel_requested": True})
            return tx.read_job(job_id)

    # ---- the worker's side ----------------------------------------------------------------------
    def claim_job(self, worker: str, lease_s: float = 60.0) -> Job | None:
        """Take the oldest queued job for ``worker`` (running, attempts + 1), or None. Expires the
        jobs of workers that stopped heartbeating first (see the module docstring)."""
        _worker_id(worker)
        if not (lease_s > 0 and math.isfinite(lease_s)):
            raise ValueError(f"lease_s={lease_s!r} must be a positive number of seconds")
        sql, execute = self._job_reads()
        if not sql.claimable(execute, time.time()):  # the common idle poll takes no write lock
            return None
        with self._jobs() as tx:
            now = tx.clock()
            self._expire(tx, now)
            job_id = tx.next_queued()
            if job_id is None:
                return None
            job = tx.read_job(job_id)
            tx.update_job(
                job_id,
                {
                    "status": "running",
                    "worker": worker,
                    "attempts": job.attempts + 1,
                    "lease_s": float(lease_s),
                    "heartbeat_at": now,
                    "started_at": now,
                    "step": 0,
                    "loss": None,
                    "dev": None,
                },
            )
            return tx.read_job(job_id)

    def expire_jobs(self) -> int:
        """Requeue or fail the running jobs whose lease or timeout ran out; how many changed."""
        with self._jobs() as tx:
            return self._expire(tx, tx.clock())

    def job_progress(
        self,
        job_id: int,
        worker: str,
        step: int | None = None,
        loss: float | None = None,
        dev: dict | None = None,
    ) -> bool:
        """The worker's heartbeat, with its progress when given; returns whether a cancel was
        requested. :class:`JobLost` when ``worker`` no longer holds the job."""
        with self._jobs() as tx:
            fields: dict = {"heartbeat_at": tx.clock()}
            if step is not None:
                fields["step"] = int(step)
            if loss is not None:
                fields["loss"] = finite_or_none(loss)
            if dev is not None:
                fields["dev"] = clean_metrics(dev)
            if not tx.update_job(_job_id(job_id), fields, holder=_worker_id(worker)):
                raise JobLost(self._lost(tx, job_id, worker))
            return tx.read_job(job_id).cancel_requested

    def release_job(self, job_id: int, worker: str, reason: str) -> Job:
        """Give a running job back to the queue without spending an attempt (a worker shutting
        down); cancelled instead when a cancel was requested."""
        with self._jobs() as tx:
            job = self._held(tx, job_id, worker)
            if job.cancel_requested:
                fields = {"status": "cancelled", "finished_at": tx.clock(), "error": "cancelled"}
            else:
                fields = {"status": "queued", "worker": None, "attempts": max(0, job.attempts - 1), "error": reason}
                fields |= {"heartbeat_at": None, "started_at": None, "step": 0, "loss": None, "dev": None}
            tx.update_job(job.id, fields)
            return tx.read_job(job.id)

    def finish_job(
        self,
        job_id: int,
        worker: str,
        status: str,
        tasks: Sequence[Task] = (),
        family: Family | None = None,
        error: str | None = None,
        loss: float | None = None,
        dev: dict | None = None,
    ) -> Job:
        """End a running job. ``succeeded``: write ``family`` (mode full) and ``tasks`` with the
        store's rules and mark the job, in ONE transaction (or fail it with the reason the write
        was refused); ``failed`` / ``cancelled``: mark it, write nothing."""
        if status not in FINISHED:
            raise ValueError(f"status={status!r} must be one of {', '.join(FINISHED)}")
        ended = ({"loss": finite_or_none(loss)} if loss is not None else {}) | (
            {"dev": clean_metrics(dev)} if dev else {}
        )
        if status == "succeeded":
            if not tasks:
                raise ValueError("a succeeded job must write at least one task")
            try:
                with self._transaction() as tx:  # the store's write transaction: its rules and sequence
                    job = self._held(tx, job_id, worker)
                    if not job.cancel_requested:
                        if family is not None:
                            self._write_family(tx, family, job.spec.overwrite)
                        self._write_tasks(tx, list(tasks), job.spec.overwrite)
                        done = {"status": "succeeded", "step": job.steps, "error": None, "finished_at": tx.clock()}
                        tx.update_job(job.id, ended | done)
                        return tx.read_job(job.id)
            except (Conflict, NotFound, InvalidArtifact) as e:
                status, error = "failed", f"training finished but its result could not be written: {e}"
            else:
                status = "cancelled"
        with self._jobs() as tx:
            job = self._held(tx, job_id, worker)
            if job.cancel_requested and status != "failed":
                status = "cancelled"
            message = error or ("cancelled" if status == "cancelled" else None)
            tx.update_job(job.id, ended | {"status": status, "error": message, "finished_at": tx.clock()})
            return tx.read_job(job.id)

    # ---- helpers --------------------------------------------------------------------------------
    def _held(self, tx: JobTransaction, job_id: int, worker: str) -> Job:
        job = tx.read_job(_job_id(job_id), lock=True)
        if job is None or job.status != "running" or job.worker != _worker_id(worker):
            raise JobLost(self._lost(tx, job_id, worker, job))
        return job

    @staticmethod
    def _lost(tx: JobTransaction, job_id: int, worker: str, job: Job | None = None) -> str:
        job = job or tx.read_job(job_id)
        if job is None:
            return f"job {job_id} does not exist"
        holder = f" by worker {job.worker!r}" if job.status == "running" else ""
        return f"worker {worker!r} no longer holds job {job_id}: it is {job.status}{holder}"

    @staticmethod
    def _expire(tx: JobTransaction, now: float) -> int:
        changed = 0
        for job in tx.expired(now):
            who = f"worker {job.worker!r}"
            if job.cancel_requested:
                fields = {"status": "cancelled", "finished_at": now, "error": f"cancelled ({who} stopped meanwhile)"}
            elif job.timed_out(now):
                fields = {"status": "failed", "finished_at": now, "error": f"timed out after {job.timeout_s:g}s"}
            elif job.attempts >= job.max_attempts:
                fields = {
                    "status": "failed",
                    "finished_at": now,
                    "error": f"{who} stopped heartbeating; gave up after {job.attempts} attempt(s)",
                }
            else:
                fields = {
                    "status": "queued",
                    "worker": None,
                    "error": f"attempt {job.attempts}: {who} stopped heartbeating; requeued",
                    "heartbeat_at": None,
                    "started_at": None,
                    "step": 0,
                    "loss": None,
                    "dev": None,
                }
            tx.update_job(job.id, fields)
            changed += 1
        return changed


def clean_metrics(metrics: dict) -> dict:
    """Metrics as stored: finite numbers only (NaN has no JSON)."""
    return {str(k): float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def _job_id(value: object, allow_zero: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if allow_zero else 1):
        raise InvalidArtifact(f"a job id is a positive integer, got {value!r}")
    return value


def _worker_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_WORKER_ID:
        raise ValueError(f"a worker id is a non-blank string of at most {MAX_WORKER_ID} characters, got {value!r}")
    return value
