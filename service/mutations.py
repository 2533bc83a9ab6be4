"""Every change to what is served goes through one path: persist it to the store (the API's own
writes), publish it to the prompt table, then record it.

:meth:`Mutations.publish` is that path's one function: it takes "a task or family written (or
deleted)" that the store already holds and makes it served. The API's writes (persisted first,
so nothing is acknowledged or served before it is durable) and the store sync (which publishes
what other writers put in the store) both call it, under the one lock they share.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Literal

from prompts_store import Conflict, DirectoryStore, Family, Task, check_compatible, validate_name

from .metrics import Metrics
from .prompt_table import FamilyEntry, PromptTable, TaskEntry
from .schemas import FamilyInfo, TaskInfo
from .views import family_info, task_info

Stamp = tuple[int, int]  # the store's mark of one version of an artefact: (mtime_ns, size) of its file


@dataclass(frozen=True)
class Change:
    """A task or family as the store now holds it: written (``artifact`` set) or deleted (None)."""

    kind: Literal["family", "task"]
    name: str
    artifact: Family | Task | None = None
    stamp: Stamp | None = None  # the store's mark of the written version; None when deleted

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


class Mutations:
    def __init__(self, store: DirectoryStore, table: PromptTable, fingerprint: dict, metrics: Metrics):
        self.store, self.table, self.fingerprint, self.metrics = store, table, fingerprint, metrics
        self.lock = threading.Lock()  # serialises store writes and publishing (API and store sync)
        self.published: dict[str, Stamp] = {}  # Change.key -> stamp of the version the table serves

    # ---- the one path -----------------------------------------------------------------------
    def publish(self, change: Change) -> TaskEntry | FamilyEntry | None:
        """Make a change the store already holds served, then record it. Call with ``lock`` held.

        Raises a ``StoreError`` when it cannot be served (another backbone, factors that do not
        fit, a family still in use); the table and the record are then unchanged."""
        entry: TaskEntry | FamilyEntry | None = None
        if change.kind == "task":
            if change.artifact is None:
                self.table.remove_task(change.name, missing_ok=True)
            else:
                entry = self.table.put_task(change.artifact)
        elif change.artifact is None:
            self.table.remove_family(change.name, missing_ok=True)
        else:
            check_compatible(change.name, change.artifact.fingerprint, self.fingerprint)
            entry = self.table.put_family(change.artifact)
        if change.stamp is None:
            self.published.pop(change.key, None)
        else:
            self.published[change.key] = change.stamp
        self.metrics.observe_table(len(self.table.tasks), len(self.table.families), self.table.nbytes())
        return entry

    # ---- the API's writes: check, persist, publish (blocking work runs off the event loop) -----
    async def put_task(self, task: Task, create_only: bool) -> tuple[TaskInfo, bool]:
        """The written task's description and whether it is new; durable and served on return."""
        return await asyncio.to_thread(self._put_task, task, create_only)

    async def delete_task(self, name: str) -> None:
        validate_name(name, "task")
        await asyncio.to_thread(self._delete_task, name)

    async def put_family(self, family: Family, create_only: bool) -> tuple[FamilyInfo, bool]:
        check_compatible(family.name, family.fingerprint, self.fingerprint)  # 409 before anything is written
        return await asyncio.to_thread(self._put_family, family, create_only)

    async def delete_family(self, name: str) -> None:
        validate_name(name, "family")
        await asyncio.to_thread(self._delete_family, name)

    def _put_task(self, task: Task, create_only: bool) -> tuple[TaskInfo, bool]:
        with self.lock:
            family = self.table.check_fits(task)  # 404 / 422 against the served family, before the store
            existed = self.store.has_task(task.name)
            if create_only and existed:
                raise Conflict(f"task {task.name!r} already exists; use PUT /tasks/{task.name} to replace it")
            self.store.put_task(task, overwrite=True)  # durable before anyone is told
            entry = self.publish(Change("task", task.name, task, self._stamp("task", task.name)))
            return task_info(task.name, entry, family.length, self.table.d), not existed

    def _delete_task(self, name: str) -> None:
        with self.lock:
            if self.store.has_task(name):
                self.store.delete_task(name)
            else:
                self.table.task(name)  # 404 unless served (a file removed by hand, not yet synced)
            self.publish(Change("task", name))

    def _put_family(self, family: Family, create_only: bool) -> tuple[FamilyInfo, bool]:
        with self.lock:
            existed = self.store.has_family(family.name)
            if create_only and existed:
                raise Conflict(f"family {family.name!r} already exists")
            self.store.put_family(family, overwrite=True)
            entry = self.publish(Change("family", family.name, family, self._stamp("family", family.name)))
            return family_info(family.name, entry, self.table.d, self.table.family_tasks[family.name]), not existed

    def _delete_family(self, name: str) -> None:
        with self.lock:
            self.store.delete_family(name)  # 404, or 409 while tasks use it
            self.publish(Change("family", name))

    def _stamp(self, kind: str, name: str) -> Stamp | None:
        """The stamp :meth:`DirectoryStore.snapshot` gives the artefact now, so the sync skips it."""
        path = self.store.family_path(name) if kind == "family" else self.store.task_path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size
