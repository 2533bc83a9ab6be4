"""Read views: what is served, described from one consistent state of the prompt table.

A listing copies the table's maps in one hold of its lock and describes every row from that
copy, so a concurrent write can neither make it fail nor give it a torn row; a single
description reads its task and that task's family in one hold. Writes describe what they wrote
with the same functions (:func:`task_info`, :func:`family_info`), without a second lookup.
"""

from __future__ import annotations

from prompts_store import validate_name

from .prompt_table import FamilyEntry, PromptTable, TaskEntry
from .schemas import FamilyInfo, FamilyList, TaskInfo, TaskList


def task_info(name: str, task: TaskEntry, l: int, d: int) -> TaskInfo:
    parameters = (l + d) * task.rank
    return TaskInfo(
        name=name,
        family=task.family,
        rank=task.rank,
        l=l,
        d=d,
        parameters=parameters,
        size_bytes=4 * parameters,
        created_at=task.created_at,
        source=task.source,
    )


def family_info(name: str, family: FamilyEntry, d: int, tasks: int) -> FamilyInfo:
    return FamilyInfo(
        name=name,
        l=family.length,
        d=d,
        tasks=tasks,
        created_at=family.created_at,
        source=family.source,
        model_id=family.fingerprint.get("model_id"),
    )


class Views:
    def __init__(self, table: PromptTable):
        self.table = table

    def task(self, name: str) -> TaskInfo:
        validate_name(name, "task")
        with self.table.lock:
            entry = self.table.task(name)
            length = self.table.families[entry.family].length
        return task_info(name, entry, length, self.table.d)

    def tasks(self) -> TaskList:
        snap = self.table.snapshot()
        return TaskList(
            tasks=[task_info(n, e, snap.families[e.family].length, snap.d) for n, e in sorted(snap.tasks.items())]
        )

    def family(self, name: str) -> FamilyInfo:
        validate_name(name, "family")
        with self.table.lock:
            entry = self.table.family(name)
            tasks = self.table.family_tasks[name]
        return family_info(name, entry, self.table.d, tasks)

    def families(self) -> FamilyList:
        snap = self.table.snapshot()
        return FamilyList(
            families=[family_info(n, e, snap.d, snap.family_tasks.get(n, 0)) for n, e in sorted(snap.families.items())]
        )

    def counts(self) -> dict[str, int]:
        with self.table.lock:
            return {"tasks": len(self.table.tasks), "families": len(self.table.families)}
