"""Every family's ``P*`` and every task's ``u, v`` resident on the serving device, by slot.

    shared: (F_cap, L_max, d)   one row per family slot, zero-padded to the longest prompt
    u:      (S_cap, L_max, R)   one row per task slot, zero-padded to the largest rank
    v:      (S_cap, d, R)

A task costs (l + d)·r floats. Adding a task takes a free slot, growing capacity by doubling
(amortised, no reallocation per upload); deleting frees the slot. All reads and writes hold
``lock``; a batch gathers its rows' prompts under it, so a request sees a task's old or new
factors, never a mix. Entries are immutable (a write replaces them), so a :meth:`snapshot` stays
consistent for as long as a reader keeps it.

Built once at start-up and handed to the engine (reads) and to the mutation path (the one writer).
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

import torch

from prompts_store import Conflict, Family, NotFound, Task, compose_rows
from prompts_store.artifacts import check_factor_shapes


@dataclass(frozen=True)
class FamilyEntry:
    slot: int
    length: int
    fingerprint: dict
    created_at: str
    source: str


@dataclass(frozen=True)
class TaskEntry:
    slot: int
    family: str
    rank: int
    created_at: str
    source: str


@dataclass(frozen=True)
class TableSnapshot:
    """The table's entries as of one instant (copies of its maps; the entries are immutable)."""

    d: int
    families: dict[str, FamilyEntry]
    tasks: dict[str, TaskEntry]
    family_tasks: dict[str, int]  # family -> how many tasks use it


def _grown(t: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """A copy of ``t`` zero-padded along ``dim`` to ``size``."""
    shape = list(t.shape)
    shape[dim] = size
    out = t.new_zeros(shape)
    out.narrow(dim, 0, t.shape[dim]).copy_(t)
    return out


class PromptTable:
    def __init__(self, d: int, device: torch.device, task_capacity: int = 64, family_capacity: int = 4):
        self.d, self.device = d, device
        self.lock = threading.RLock()
        self.shared = torch.zeros(family_capacity, 1, d, device=device)
        self.u = torch.zeros(task_capacity, 1, 1, device=device)
        self.v = torch.zeros(task_capacity, d, 1, device=device)
        self.families: dict[str, FamilyEntry] = {}
        self.tasks: dict[str, TaskEntry] = {}
        self.family_tasks: collections.Counter[str] = collections.Counter()  # family -> its task count
        self._free_tasks: list[int] = []
        self._next_task = 0
        self._free_families: list[int] = []
        self._next_family = 0

    # ---- reads -------------------------------------------------------------------------------
    def family(self, name: str) -> FamilyEntry:
        try:
            return self.families[name]
        except KeyError:
            raise NotFound(f"family {name!r} does not exist") from None

    def task(self, name: str) -> TaskEntry:
        """THE "task does not exist" (404) of the service: every lookup of a task by name ends here."""
        try:
            return self.tasks[name]
        except KeyError:
            raise NotFound(f"task {name!r} does not exist") from None

    def task_prompt_length(self, name: str) -> int:
        with self.lock:
            return self.families[self.task(name).family].length

    def compose(self, names: list[str]) -> torch.Tensor:
        """Prompts (B, l, d) for tasks that share one prompt length l; NotFound if one is gone."""
        with self.lock:
            entries = [self.task(n) for n in names]
            fams = [self.families[e.family] for e in entries]
            length = fams[0].length
            if any(f.length != length for f in fams):
                raise ValueError("compose() needs tasks of one prompt length")
            fam_idx = torch.tensor([f.slot for f in fams], device=self.device)
            task_idx = torch.tensor([e.slot for e in entries], device=self.device)
            # the gather copies the rows, so later writes to a slot cannot reach this batch
            return compose_rows(self.shared[:, :length], self.u[:, :length], self.v, fam_idx, task_idx)

    def check_fits(self, task: Task) -> FamilyEntry:
        """The served family of ``task``: NotFound when it is not served, InvalidArtifact (422)
        when the factors do not fit its (l, d)."""
        with self.lock:
            fam = self.families.get(task.family)
            if fam is None:
                raise NotFound(f"task {task.name!r}: family {task.family!r} does not exist")
            check_factor_shapes(task.name, task.u.shape, task.v.shape, task.family, fam.length, self.d)
            return fam

    def snapshot(self) -> TableSnapshot:
        """Every entry as of one instant: O(tasks) map copies under the lock, nothing more."""
        with self.lock:
            return TableSnapshot(self.d, dict(self.families), dict(self.tasks), dict(self.family_tasks))

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.shared, self.u, self.v))

    # ---- writes ------------------------------------------------------------------------------
    def put_family(self, family: Family) -> FamilyEntry:
        if family.d != self.d:
            raise Conflict(f"family {family.name!r} has d={family.d}, the backbone has d_model={self.d}")
        with self.lock:
            old = self.families.get(family.name)
            if old is not None and old.length != family.length and self.family_tasks[family.name]:
                raise Conflict(
                    f"family {family.name!r} has tasks of l={old.length}; cannot change it to l={family.length}"
                )
            self._ensure_length(family.length)
            slot = old.slot if old is not None else self._take_family_slot()
            self.shared[slot].zero_()
            self.shared[slot, : family.length] = family.shared.to(self.device)
            entry = FamilyEntry(slot, family.length, family.fingerprint, family.created_at, family.source)
            self.families[family.name] = entry
            return entry

    def remove_family(self, name: str, missing_ok: bool = False) -> None:
        with self.lock:
            if missing_ok and name not in self.families:
                return
            entry = self.family(name)
            if self.family_tasks[name]:
                users = [n for n, e in self.tasks.items() if e.family == name]  # only to name a few
                raise Conflict(f"family {name!r} is used by {len(users)} task(s), e.g. {users[:3]}")
            del self.families[name]
            del self.family_tasks[name]
            self._free_families.append(entry.slot)

    def put_task(self, task: Task) -> TaskEntry:
        with self.lock:
            fam = self.check_fits(task)
            if task.rank > self.u.shape[2]:
                self.u, self.v = _grown(self.u, 2, task.rank), _grown(self.v, 2, task.rank)
            old = self.tasks.get(task.name)
            slot = old.slot if old is not None else self._take_task_slot()
            self.u[slot].zero_()
            self.v[slot].zero_()
            self.u[slot, : fam.length, : task.rank] = task.u.to(self.device)
            self.v[slot, :, : task.rank] = task.v.to(self.device)
            entry = TaskEntry(slot, task.family, task.rank, task.created_at, task.source)
            self.tasks[task.name] = entry
            if old is not None:
                self.family_tasks[old.family] -= 1
            self.family_tasks[task.family] += 1
            return entry

    def remove_task(self, name: str, missing_ok: bool = False) -> None:
        with self.lock:
            if missing_ok and name not in self.tasks:
                return
            entry = self.task(name)
            del self.tasks[name]
            self.family_tasks[entry.family] -= 1
            self._free_tasks.append(entry.slot)

    # ---- internals ---------------------------------------------------------------------------
    def _ensure_length(self, length: int) -> None:
        if length > self.shared.shape[1]:
            self.shared, self.u = _grown(self.shared, 1, length), _grown(self.u, 1, length)

    def _take_task_slot(self) -> int:
        if self._free_tasks:
            return self._free_tasks.pop()
        if self._next_task == self.u.shape[0]:  # full: double the capacity
            self.u, self.v = _grown(self.u, 0, 2 * self._next_task), _grown(self.v, 0, 2 * self._next_task)
        self._next_task += 1
        return self._next_task - 1

    def _take_family_slot(self) -> int:
        if self._free_families:
            return self._free_families.pop()
        if self._next_family == self.shared.shape[0]:
            self.shared = _grown(self.shared, 0, 2 * self._next_family)
        self._next_family += 1
        return self._next_family - 1
