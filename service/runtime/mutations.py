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

The store decides every answer: it holds the rules (a family exists, factors fit it, a name is
free, a family is unused) and checks them against what IS stored, while this server's table may be
behind other replicas' writes. Before a write, a family the table does not know makes it catch up
(the store sync's poll, registered with :meth:`Mutations.follow`); after the store commits, a
refusal from a table that is behind is answered by catching up, never by an error for a write
that is durable.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import numpy as np
import torch

from mpt_core import Family, Task, check_compatible, validate_name
from prompts_store import Change, Conflict, NotFound, Store, StoreError, TaskChunk

from ..http.errors import ApiError
from ..http.schemas import FamilyInfo, TaskInfo
from ..table.prompt_table import PromptTable
from .metrics import Metrics
from .store_work import StoreWork
from .views import describe_family, describe_task

log = logging.getLogger("mpt.service")


class Mutations:
    def __init__(
        self, store: Store, table: PromptTable, fingerprint: dict, metrics: Metrics, work: StoreWork | None = None
    ):
        self.store, self.table, self.fingerprint, self.metrics = store, table, fingerprint, metrics
        self.work = work or StoreWork()  # the threads that talk to the store (bounded connections)
        self.write_lock = threading.Lock()  # this process's API writers, one at a time
        self._catch_up: Callable[[], object] | None = None  # the store sync's poll, once it follows us

    def follow(self, catch_up: Callable[[], object]) -> None:
        """Where the API's writes catch up with the store when the table is behind it (the store sync)."""
        self._catch_up = catch_up

    def catch_up(self) -> None:
        """Apply every change the store holds that the table has not seen yet."""
        if self._catch_up is not None:
            self._catch_up()

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

    # ---- the API's writes: check, persist, publish (on the store's threads, off the event loop) -----
    async def put_task(self, task: Task, create_only: bool) -> tuple[TaskInfo, bool]:
        """The written task's description and whether it is new; durable and served on return."""
        return await self.work.run(self._put_task, task, create_only)

    async def put_tasks(self, tasks: list[Task], overwrite: bool) -> int:
        """Write ``tasks`` in one store transaction (all or nothing) and serve them; returns the
        store sequence of the last one."""
        return await self.work.run(self._put_tasks, tasks, overwrite)

    async def delete_task(self, name: str) -> None:
        validate_name(name, "task")
        await self.work.run(self._delete_task, name)

    async def put_family(self, family: Family, create_only: bool) -> tuple[FamilyInfo, bool]:
        check_compatible(family.name, family.fingerprint, self.fingerprint)  # 409 before anything is written
        return await self.work.run(self._put_family, family, create_only)

    async def delete_family(self, name: str) -> None:
        validate_name(name, "family")
        await self.work.run(self._delete_family, name)

    def check_task(self, task: Task) -> None:
        """What the store does not check: the rank cap of this server (413)."""
        if task.rank > self.table.max_rank:
            raise ApiError(
                413,
                "rank_too_large",
                f"task {task.name!r} has rank {task.rank}; this server takes at most "
                f"MPT_MAX_RANK={self.table.max_rank}",
            )

    def _check_families(self, names: set[str]) -> None:
        """Before writing tasks: their families, as the store holds them, are ones this server can
        serve. A family this table does not know (yet) is caught up with first; one the store does
        not hold is left to the store's own check (404); one trained for another backbone is 409."""
        if names <= self.table.families.keys():
            return
        self.catch_up()
        for name in sorted(names - self.table.families.keys()):
            with contextlib.suppress(NotFound):  # the store answers the write with its own 404
                check_compatible(name, self.store.family_info(name).fingerprint, self.fingerprint)

    def _committed(self, change: Change) -> None:
        """Publish a change the store has made durable. The table may refuse it when it is behind the
        store (another replica's writes not polled yet): the answer is still the store's, success,
        and the table catches up from the store instead."""
        try:
            self.publish(change)
        except StoreError as e:
            log.debug("catching up before serving %s %r: %s", change.kind, change.name, e)
            self._catch_up_after_commit()

    def _catch_up_after_commit(self) -> None:
        """Catch up after a durable write: a store that fails now leaves it to the next poll, and
        the write is still answered as done."""
        try:
            self.catch_up()
        except StoreError as e:
            log.warning("written, but not caught up with the store (the next poll will): %s", e)

    def _put_task(self, task: Task, create_only: bool) -> tuple[TaskInfo, bool]:
        self.check_task(task)
        self._check_families({task.family})
        with self.write_lock:
            existed = self.store.has_task(task.name)
            try:  # the store's rules decide the answer: family exists (404), fits (422), name taken (409)
                seq = self.store.put_task(task, overwrite=not create_only)  # durable before anyone is told
            except Conflict as e:
                if not create_only:
                    raise
                raise Conflict(f"{e}; use PUT /tasks/{task.name} to replace it") from None
            self._committed(Change(seq, "task", task.name, task))
        # described from what was written: a write racing this one cannot turn it into a 404
        return describe_task(task.name, task.family, task.rank, task.u.shape[0], self.table.d, task), not existed

    def _put_tasks(self, tasks: list[Task], overwrite: bool) -> int:
        for task in tasks:
            self.check_task(task)
        self._check_families({t.family for t in tasks})
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
            if refused:  # the table is behind the store (a family written elsewhere): catch up
                self._catch_up_after_commit()
                refused = {n: why for n, why in refused.items() if not self.table.has_task(n)}
        if refused:
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
            self._committed(Change(seq, "task", name, None))

    def _put_family(self, family: Family, create_only: bool) -> tuple[FamilyInfo, bool]:
        with self.write_lock:
            existed = self.store.has_family(family.name)
            seq = self.store.put_family(family, overwrite=not create_only)  # 409: taken, or reshaping a used one
            self._committed(Change(seq, "family", family.name, family))
            tasks = self.table.family_tasks(family.name)
        return describe_family(family.name, family.length, self.table.d, tasks, family), not existed

    def _delete_family(self, name: str) -> None:
        with self.write_lock:
            seq = self.store.delete_family(name)  # 404, or 409 while tasks use it (in the store)
            self._committed(Change(seq, "family", name, None))


def _some(refused: dict[str, str], k: int = 3) -> str:
    items = [f"{n!r}: {why}" for n, why in list(refused.items())[:k]]
    more = f" (and {len(refused) - k} more)" if len(refused) > k else ""
    return "; ".join(items) + more
