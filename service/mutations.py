"""Every change to what is served goes through one path: persist it to the store (the API's own
writes), then publish it to the prompt table.

:meth:`Mutations.publish` takes a :class:`prompts_store.Change` (a task or family written or
deleted, with the store sequence that did it) and makes it served; :meth:`publish_rows` is the
same for a stack of tasks (bulk loads and batch uploads). The API's writes publish after the
store has made them durable; the store sync (:mod:`.store_sync`) publishes what the change feed
shows. They need no common lock: the table applies a version only when its sequence is above the
one it holds for that name (see :mod:`.prompt_table`), so whichever publishes last, the newest
version is served and a deleted name is never revived by an older write.

The API's writers of this process are serialised by ``write_lock`` (one store write at a time, as
the store does anyway), so "created" (201) or "replaced" (200) is exact among them. The store
sync never takes it: reading the store never holds up an upload.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import numpy as np
import torch

from prompts_store import Change, Conflict, Family, NotFound, Store, Task, TaskChunk, check_compatible, validate_name

from .errors import ApiError
from .metrics import Metrics
from .prompt_table import PromptTable
from .schemas import FamilyInfo, TaskInfo
from .views import describe_family, describe_task

log = logging.getLogger("mpt.service")


class Mutations:
    def __init__(self, store: Store, table: PromptTable, fingerprint: dict, metrics: Metrics):
        self.store, self.table, self.fingerprint, self.metrics = store, table, fingerprint, metrics
        self.write_lock = threading.Lock()  # this process's API writers, one at a time

    # ---- the one path ------------------------------------------------------------------------------
    def publish(self, change: Change) -> bool:
        """Make a change the store holds served; False when the table already serves a newer state.

        A change whose record failed the load checks (``error``) is served as absent. Raises a
        ``StoreError`` when a written value cannot be served (another backbone, a family not
        served, factors that do not fit, a rank over the limit); the table is then unchanged."""
        value = None if change.error else change.value
        if change.kind == "task":
            if value is None:
                applied = self.table.remove_task(change.name, change.seq)
            else:
                applied = self.table.put_task(value, change.seq)
        elif value is None:
            applied = self.table.remove_family(change.name, change.seq)
        else:
            check_compatible(change.name, value.fingerprint, self.fingerprint)
            applied = self.table.put_family(value, change.seq)
        self.observe()
        return applied

    def publish_rows(self, chunk: TaskChunk, seq) -> dict[str, str]:
        """Serve a stack of tasks of one shape class (``seq``: an int for all rows, or one per row);
        returns the rows refused (name -> why)."""
        refused, _ = self.table.put_rows(chunk, seq)
        self.observe()
        return refused

    def observe(self) -> None:
        self.metrics.observe_table(len(self.table), len(self.table.families), self.table.nbytes())

    # ---- the API's writes: check, persist, publish (blocking work runs off the event loop) -----------
    async def put_task(self, task: Task, create_only: bool) -> tuple[TaskInfo, bool]:
        """The written task's description and whether it is new; durable and served on return."""
        return await asyncio.to_thread(self._put_task, task, create_only)

    async def put_tasks(self, tasks: list[Task], overwrite: bool) -> int:
        """Write ``tasks`` in one store transaction (all or nothing) and serve them; returns the
        store sequence of the last one."""
        return await asyncio.to_thread(self._put_tasks, tasks, overwrite)

    async def delete_task(self, name: str) -> None:
        validate_name(name, "task")
        await asyncio.to_thread(self._delete_task, name)

    async def put_family(self, family: Family, create_only: bool) -> tuple[FamilyInfo, bool]:
        check_compatible(family.name, family.fingerprint, self.fingerprint)  # 409 before anything is written
        return await asyncio.to_thread(self._put_family, family, create_only)

    async def delete_family(self, name: str) -> None:
        validate_name(name, "family")
        await asyncio.to_thread(self._delete_family, name)

    def check_task(self, task: Task) -> None:
        """What the store does not check: the rank cap (413) and that the family is served here."""
        if task.rank > self.table.max_rank:
            raise ApiError(
                413,
                "rank_too_large",
                f"task {task.name!r} has rank {task.rank}; this server takes at most "
                f"MPT_MAX_RANK={self.table.max_rank}",
            )
        self.table.check_fits(task)  # 404 / 422 against the served family

    def _put_task(self, task: Task, create_only: bool) -> tuple[TaskInfo, bool]:
        self.check_task(task)
        with self.write_lock:
            existed = self.store.has_task(task.name)
            if create_only and existed:
                raise Conflict(f"task {task.name!r} already exists; use PUT /tasks/{task.name} to replace it")
            seq = self.store.put_task(task, overwrite=not create_only)  # durable before anyone is told
            self.publish(Change(seq, "task", task.name, task))
        # described from what was written: a write racing this one cannot turn it into a 404
        return describe_task(task.name, task.family, task.rank, task.u.shape[0], self.table.d, task), not existed

    def _put_tasks(self, tasks: list[Task], overwrite: bool) -> int:
        for task in tasks:
            self.check_task(task)
        with self.write_lock:
            last = self.store.put_tasks(tasks, overwrite=overwrite)  # all or nothing; names the bad task
            first = last - len(tasks) + 1
            groups: dict[tuple[int, int], list[int]] = {}
            for i, t in enumerate(tasks):
                groups.setdefault((t.u.shape[0], t.rank), []).append(i)
            refused = {}
            for (l, r), idx in groups.items():
                chunk = TaskChunk(
                    l,
                    self.table.d,
                    r,
                    [tasks[i].name for i in idx],
                    [tasks[i].family for i in idx],
                    [tasks[i].created_at for i in idx],
                    [tasks[i].source for i in idx],
                    torch.stack([tasks[i].u for i in idx]),  # (k, l, r)
                    torch.stack([tasks[i].v for i in idx]),  # (k, d, r)
                )
                refused |= self.publish_rows(chunk, np.array(idx, dtype=np.int64) + first)
        if refused:  # only when a family changed between the check and the write
            log.warning("stored but not served: %s", _some(refused))
        return last

    def _delete_task(self, name: str) -> None:
        with self.write_lock:
            try:
                seq = self.store.delete_task(name)
            except NotFound:
                if not self.table.has_task(name):
                    raise
                # served but no longer in the store (a directory's file removed by hand): stop serving it
                self.table.remove_task(name, self.store.head(), force=True)
                self.observe()
                return
            self.publish(Change(seq, "task", name, None))

    def _put_family(self, family: Family, create_only: bool) -> tuple[FamilyInfo, bool]:
        with self.write_lock:
            existed = self.store.has_family(family.name)
            if create_only and existed:
                raise Conflict(f"family {family.name!r} already exists")
            seq = self.store.put_family(family, overwrite=not create_only)
            self.publish(Change(seq, "family", family.name, family))
            tasks = self.table.family_tasks(family.name)
        return describe_family(family.name, family.length, self.table.d, tasks, family), not existed

    def _delete_family(self, name: str) -> None:
        with self.write_lock:
            seq = self.store.delete_family(name)  # 404, or 409 while tasks use it
            self.publish(Change(seq, "family", name, None))


def _some(refused: dict[str, str], k: int = 3) -> str:
    items = [f"{n!r}: {why}" for n, why in list(refused.items())[:k]]
    more = f" (and {len(refused) - k} more)" if len(refused) > k else ""
    return "; ".join(items) + more
