"""Read views: what is served, described from one consistent state of the prompt table.

A page of a listing is found and described in one hold of the table's lock (a bisection of the
sorted names and ``limit`` row reads: O(log N + limit), never a scan), so a concurrent write can
neither make it fail nor give it a torn row; a single description reads its task in one hold.
Writes describe what they wrote with the same functions (:func:`describe_task`,
:func:`describe_family`), without a second lookup.
"""

from __future__ import annotations

from mpt_core import validate_name

from ..http.schemas import FamilyInfo, FamilyPage, TaskInfo
from ..table.prompt_table import PromptTable
from ..table.task_slots import TaskEntry


def task_fields(name: str, family: str, rank: int, l: int, d: int, meta) -> dict:
    """A task's description (the fields of :class:`TaskInfo`) as a plain dict: a page of a listing
    is serialised from these directly, without a model per row.
    ``meta``: anything with ``created_at`` and ``source`` (a Task, a TaskEntry)."""
    parameters = (l + d) * rank
    return {
        "name": name,
        "family": family,
        "rank": rank,
        "l": l,
        "d": d,
        "parameters": parameters,
        "size_bytes": 4 * parameters,
        "created_at": meta.created_at,
        "source": meta.source,
    }


def describe_task(name: str, family: str, rank: int, l: int, d: int, meta) -> TaskInfo:
    return TaskInfo(**task_fields(name, family, rank, l, d, meta))


def describe_family(name: str, l: int, d: int, tasks: int, meta) -> FamilyInfo:
    """``meta``: anything with ``created_at``, ``source`` and ``fingerprint`` (a Family, a FamilyEntry)."""
    return FamilyInfo(
        name=name,
        l=l,
        d=d,
        tasks=tasks,
        created_at=meta.created_at,
        source=meta.source,
        model_id=meta.fingerprint.get("model_id"),
    )


def _task(e: TaskEntry, d: int) -> TaskInfo:
    return describe_task(e.name, e.family, e.rank, e.length, d, e)


def _task_fields(e: TaskEntry, d: int) -> dict:
    return task_fields(e.name, e.family, e.rank, e.length, d, e)


class Views:
    def __init__(self, table: PromptTable):
        self.table = table

    def task(self, name: str) -> TaskInfo:
        validate_name(name, "task")
        return _task(self.table.task(name), self.table.d)

    def tasks(self, after: str | None, limit: int, family: str | None) -> dict:
        """A page sorted by name: ``limit`` tasks after ``after``, of ``family`` when given; the
        fields of :class:`TaskPage` as plain data (a page is built per request: no model per row)."""
        if after is not None:
            validate_name(after, "cursor")
        if family is not None:
            validate_name(family, "family")
        entries, more = self.table.task_page(after, limit, family)
        return {"tasks": [_task_fields(e, self.table.d) for e in entries], "next": entries[-1].name if more else None}

    def family(self, name: str) -> FamilyInfo:
        validate_name(name, "family")
        with self.table.lock:
            entry = self.table.family(name)
            tasks = self.table.family_tasks(name)
        return describe_family(name, entry.length, self.table.d, tasks, entry)

    def families(self, after: str | None, limit: int) -> FamilyPage:
        if after is not None:
            validate_name(after, "cursor")
        rows, more = self.table.family_page(after, limit)
        d = self.table.d
        return FamilyPage(
            families=[describe_family(e.name, e.length, d, n, e) for e, n in rows],
            next=rows[-1][0].name if more else None,
        )

    def counts(self) -> dict[str, int]:
        with self.table.lock:
            return {"tasks": len(self.table), "families": len(self.table.families)}
