"""Which rows of a chunk the prompt table writes, decided before anything changes: the family
check (a row whose family is not served, or has another prompt length, is refused by name) and
the sequence rule's triage (new names are appended, names of the same class rewritten in place,
names of another class moved, rows older than what the table holds or deleted later left out).

Pure reads of the table's state; :class:`.prompt_table.PromptTable` calls them under its lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from prompts_store import TaskChunk

from .family_table import FamilyEntry
from .task_slots import CLASS_MASK, SHIFT, TaskSlots


def family_ids(families: dict[str, FamilyEntry], chunk: TaskChunk) -> tuple[np.ndarray, dict[str, str]]:
    """(n,) int32 family id per row (-1 where the family cannot take it) and the refusals."""
    ids: dict[str, int] = {}
    why: dict[str, str] = {}
    for f in set(chunk.families):
        entry = families.get(f)
        if entry is None:
            why[f] = f"family {f!r} is not served"
        elif entry.length != chunk.l:
            why[f] = f"family {f!r} has l={entry.length}; the task has l={chunk.l}"
        else:
            ids[f] = entry.fid
    if len(ids) == 1 and not why:
        return np.full(len(chunk), next(iter(ids.values())), dtype=np.int32), {}
    fids = np.array([ids.get(f, -1) for f in chunk.families], dtype=np.int32)
    refused = {chunk.names[i]: why[chunk.families[i]] for i in np.flatnonzero(fids < 0).tolist()}
    return fids, refused


@dataclass
class RowPlan:
    append: np.ndarray  # chunk rows to append: new names, and names moving in from another class
    in_place: list[tuple[int, int]] = field(default_factory=list)  # (chunk row, table row) to rewrite
    moves: list[int] = field(default_factory=list)  # chunk rows whose name leaves another class first

    def applied(self, n: int) -> np.ndarray:
        """(n,) bool: the chunk rows this plan writes."""
        mask = np.zeros(n, dtype=bool)
        mask[self.append] = True
        mask[[i for i, _ in self.in_place]] = True
        return mask


def sort_out(
    slots: TaskSlots, gone: dict[str, int], floor: int, todo: np.ndarray, chunk: TaskChunk, seqs: np.ndarray, cid: int
) -> RowPlan:
    """The plan for the chunk rows ``todo`` going to class ``cid``: a row is written when its
    sequence is above the one held for its name (its row's, or its deletion's in ``gone``, or
    ``floor``: every change up to it is reflected)."""
    plan = RowPlan(np.zeros(0, dtype=np.int64))
    append = []
    for i in todo.tolist():
        name = chunk.names[i]
        handle = slots.index.get(name)
        if handle is None:
            if seqs[i] > gone.get(name, floor):
                append.append(i)
            continue
        old_cid, row = handle & CLASS_MASK, handle >> SHIFT
        if seqs[i] <= slots.classes[old_cid].seq[row]:
            continue
        if old_cid == cid:
            plan.in_place.append((i, row))
        else:
            plan.moves.append(i)
            append.append(i)
    plan.append = np.array(append, dtype=np.int64)
    return plan
