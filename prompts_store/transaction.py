"""The write protocol a store backend implements: one atomic, serialised transaction.

:class:`.store.Store` checks every rule (names, shapes, existence, overwrite, families in use) through
these few operations, inside one transaction, and then writes; a backend only stores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from mpt_core.artifacts import Family, Task

from .jobs import Job
from .records import TaskChunk


class Transaction(ABC):
    """One atomic, serialised write transaction of a backend: all of it is durable, or none of it.

    The store calls these only with valid names and validated artefacts, after checking the rules.
    """

    @abstractmethod
    def read_family(self, name: str) -> Family | None:
        """The family as stored, or None."""

    @abstractmethod
    def existing_tasks(self, names: Sequence[str]) -> set[str]:
        """Which of ``names`` are stored tasks."""

    @abstractmethod
    def family_users(self, name: str, examples: int) -> tuple[int, list[str]]:
        """How many tasks belong to family ``name``, and up to ``examples`` of their names."""

    @abstractmethod
    def bump(self, n: int) -> int:
        """Take the next ``n`` sequence numbers; returns the first."""

    @abstractmethod
    def write_family(self, family: Family, seq: int) -> None:
        """Insert or replace the family (and drop its tombstone)."""

    @abstractmethod
    def write_tasks(self, tasks: Sequence[Task], first_seq: int) -> None:
        """Insert or replace the tasks, ``tasks[i]`` at sequence ``first_seq + i`` (and drop their tombstones)."""

    def write_task_chunk(self, chunk: TaskChunk, first_seq: int) -> None:
        """Insert or replace a chunk's tasks, row ``i`` at ``first_seq + i``. Checked like
        ``write_tasks``; this default builds a Task per row, a backend may write the stack directly."""
        self.write_tasks([chunk.task(i) for i in range(len(chunk))], first_seq)

    @abstractmethod
    def delete_family(self, name: str, seq: int) -> None:
        """Remove the (existing) family, leaving a tombstone at ``seq``."""

    @abstractmethod
    def delete_task(self, name: str, seq: int) -> None:
        """Remove the (existing) task, leaving a tombstone at ``seq``."""


class JobTransaction(ABC):
    """The job operations of one atomic, serialised transaction of a database backend (see
    :mod:`.job_queue` for the rules, checked there). Times are the store's clock (:meth:`clock`)."""

    @abstractmethod
    def clock(self) -> float:
        """Now, in Unix seconds, by the store's clock (the database server's where there is one)."""

    @abstractmethod
    def lock_submissions(self) -> None:
        """Serialise job submissions until this transaction ends, so counting active jobs and
        adding one is atomic (SQLite: its one writer already is; PostgreSQL: an advisory lock)."""

    @abstractmethod
    def insert_job(self, fields: dict) -> int:
        """Add a job row; returns its id (never reused)."""

    @abstractmethod
    def read_job(self, job_id: int, lock: bool = False) -> Job | None:
        """The job with its spec, or None; ``lock``: keep others from changing it until the end."""

    @abstractmethod
    def update_job(self, job_id: int, fields: dict, holder: str | None = None) -> bool:
        """Set ``fields`` of the job; with ``holder``, only while it runs on that worker. Whether it changed."""

    @abstractmethod
    def active_job(self, task: str) -> int | None:
        """The id of a queued or running job of ``task``, if any."""

    @abstractmethod
    def count_active(self, family: str | None) -> int:
        """Jobs queued or running (of ``family`` when given)."""

    @abstractmethod
    def next_queued(self) -> int | None:
        """The oldest queued job, locked for this transaction (PostgreSQL skips rows others hold)."""

    @abstractmethod
    def expired(self, now: float) -> list[Job]:
        """Running jobs whose lease or timeout has run out, locked for this transaction."""
