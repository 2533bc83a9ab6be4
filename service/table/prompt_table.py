"""Every family's ``P*`` and every task's ``u, v`` resident on the serving device.

Tasks are kept by :mod:`.task_slots` (slot classes per (l, r), a handle per name, interned
sources); families by :mod:`.family_table` (one small table per prompt length); the sorted
listings by :mod:`.name_index`. This module holds what ties them together: the locks, the
sequence rule, and the public reads and writes.

Ordering: every version carries the store sequence that wrote it, and a version is applied only
when its sequence is above the one the table holds for that name (the row's ``seq``, or the
sequence of the name's deletion, kept until the store sync's cursor passes it: ``advance``). So
the API's own writes and the store sync can publish in any order: an older version never
replaces a newer one, and a deleted name is never revived by an older write.

Locks: reads hold ``lock``; a batch composes its rows' prompts under it (the gather copies the
rows), so a request sees a task's old or new factors, never a mix. Writers take ``_writing`` (one
at a time), then ``lock`` only for the sections that change what readers see: growing a slot
class copies it outside ``lock``, so predictions go on while it is copied.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from mpt_core import Family, Task
from mpt_core.artifacts import check_factor_shapes
from prompts_store import Conflict, NotFound, TaskChunk

from . import created_at as created_codes
from .family_table import FamilyEntry, FamilyTable
from .name_index import NameIndex
from .row_plan import RowPlan, family_ids, sort_out
from .task_slots import RowValues, TaskEntry, TaskSlots


class PromptTable:
    def __init__(self, d: int, device: torch.device, max_rank: int = 8):
        self.d, self.device, self.max_rank = d, device, max_rank
        self.lock = threading.RLock()  # readers and writers, for short sections
        self._writing = threading.RLock()  # writers, one at a time (taken before ``lock``)
        self._families = FamilyTable(d, device)
        self.families = self._families.entries  # name -> FamilyEntry (read-only outside this class)
        self.listing = NameIndex()
        self.slots = TaskSlots(d, device, self._families, self.listing)
        self._gone_tasks: dict[str, int] = {}  # name -> sequence of its deletion (until advance passes it)
        self._floor = -1  # every change up to here is reflected (the store sync's cursor)
        self._hint = 0  # task count of a bulk load: no class grows past what it can still deliver
        self._loading = False  # a bulk load into an empty table: names are new and unique, no checks

    # ---- reads -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.slots)

    def task(self, name: str) -> TaskEntry:
        """THE "task does not exist" (404) of the service: every lookup of a task by name ends here."""
        with self.lock:
            return self.slots.entry(name)

    def has_task(self, name: str) -> bool:
        return name in self.slots

    def family(self, name: str) -> FamilyEntry:
        try:
            return self.families[name]
        except KeyError:
            raise NotFound(f"family {name!r} does not exist") from None

    def family_tasks(self, name: str) -> int:
        """How many served tasks use family ``name``."""
        return self.listing.family_size(name)

    def task_prompt_length(self, name: str) -> int:
        with self.lock:
            return self.slots.locate(name)[0].l

    def compose(self, names: list[str]) -> torch.Tensor:
        """Prompts (B, l, d) for tasks that share one prompt length l; NotFound if one is gone."""
        with self.lock:
            return self.slots.compose(names)

    def check_fits(self, task: Task) -> FamilyEntry:
        """The served family of ``task``: NotFound when it is not served, InvalidArtifact (422)
        when the factors do not fit its (l, d)."""
        with self.lock:
            fam = self.families.get(task.family)
            if fam is None:
                raise NotFound(f"task {task.name!r}: family {task.family!r} does not exist")
            check_factor_shapes(task.name, task.u.shape, task.v.shape, task.family, fam.length, self.d)
            return fam

    def task_page(self, after: str | None, limit: int, family: str | None) -> tuple[list[TaskEntry], bool]:
        """A page of served tasks sorted by name, described in one hold of the lock."""
        with self.lock:
            if family is not None:
                self.family(family)  # 404 for an unknown family
            names, more = self.listing.task_page(after, limit, family)
            return [self.slots.entry(n) for n in names], more

    def family_page(self, after: str | None, limit: int) -> tuple[list[tuple[FamilyEntry, int]], bool]:
        with self.lock:
            names, more = self.listing.family_page(after, limit)
            return [(self.families[n], self.family_tasks(n)) for n in names], more

    def nbytes(self) -> int:
        """Bytes of the resident tensors: every slot class's factors and every shared prompt."""
        with self.lock:
            return self.slots.nbytes() + self._families.nbytes()

    def classes(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(l, r) -> (tasks, capacity) of every slot class."""
        with self.lock:
            return self.slots.shapes()

    # ---- task writes -------------------------------------------------------------------------------
    def put_task(self, task: Task, seq: int) -> bool:
        """Serve ``task`` as written at sequence ``seq``; False when the table holds a newer version.
        Raises NotFound / InvalidArtifact / Conflict when it cannot be served."""
        self.check_fits(task)
        if task.rank > self.max_rank:
            raise Conflict(
                f"task {task.name!r} has rank {task.rank}, over the server's limit MPT_MAX_RANK={self.max_rank}"
            )
        chunk = TaskChunk(
            task.u.shape[0],
            self.d,
            task.rank,
            [task.name],
            [task.family],
            [task.created_at],
            [task.source],
            task.u.unsqueeze(0),
            task.v.unsqueeze(0),
        )
        refused, applied = self.put_rows(chunk, seq)
        if refused:
            raise Conflict(refused[task.name])
        return applied == 1

    def put_rows(self, chunk: TaskChunk, seq: int | np.ndarray) -> tuple[dict[str, str], int]:
        """Serve a chunk of tasks of one shape class, vectorised: ``seq`` is each row's sequence
        (an int for all). Returns (rows refused: name -> why, how many rows were applied)."""
        n = len(chunk)
        if n == 0:
            return {}, 0
        why = None
        if chunk.d != self.d:
            why = f"d={chunk.d} differs from the backbone's d_model={self.d}"
        elif chunk.rank > self.max_rank:
            why = f"rank {chunk.rank} is over the server's limit MPT_MAX_RANK={self.max_rank}"
        if why is not None:
            return dict.fromkeys(chunk.names, why), 0
        seqs = np.broadcast_to(np.asarray(seq, dtype=np.int64), (n,))
        created = created_codes.encode_many(chunk.created_at)
        with self._writing:  # one writer at a time; readers only wait for the short sections under lock
            with self.lock:
                fids, refused = family_ids(self.families, chunk)
                values = RowValues(seqs, created, fids, self.slots.sources.take(chunk.source))
            try:
                return refused, self._apply_rows(chunk, values)
            finally:
                with self.lock:
                    self.slots.sources.release(values.sources)  # what no applied row uses is forgotten

    def _apply_rows(self, chunk: TaskChunk, values: RowValues) -> int:
        """(Under ``_writing``.) Write the rows the sequence rule admits; returns how many."""
        slots = self.slots
        with self.lock:
            cid = slots.class_for(chunk.l, chunk.rank)
            cls = slots.classes[cid]
            plan = RowPlan(np.flatnonzero(values.fids >= 0))
            if not self._loading and (len(slots) or self._gone_tasks or values.seqs.min() <= self._floor):
                plan = sort_out(slots, self._gone_tasks, self._floor, plan.append, chunk, values.seqs, cid)
        # growing copies the class: done outside the lock, so predictions go on meanwhile
        # during a bulk load no class needs room for more rows than the load has yet to deliver
        todo = plan.append
        limit = cls.size + max(len(todo), self._hint - len(slots)) if self._loading else None
        grown = cls.grown(len(todo), limit)
        with self.lock:
            if grown is not None:
                cls.adopt(grown)
            for i in plan.moves:  # a name changing class (rank or length): out of its old one
                slots.remove(chunk.names[i], keep_class=cid)
            if plan.in_place:
                slots.write_in_place(cid, chunk, plan.in_place, values)
            if len(todo):
                slots.append(cid, chunk, todo, values)
                if self._gone_tasks:
                    for i in todo.tolist():
                        self._gone_tasks.pop(chunk.names[i], None)
            slots.keep_created_text(chunk, values.created, plan.applied(len(chunk)), [i for i, _ in plan.in_place])
            if cls.size == 0:
                slots.drop_class(cid)
            return len(todo) + len(plan.in_place)

    def remove_task(self, name: str, seq: int, force: bool = False) -> bool:
        """Stop serving ``name``, deleted at sequence ``seq``; False when a newer version is served
        (``force``: remove it whatever its sequence, for a task the store no longer holds)."""
        with self._writing, self.lock:
            if name not in self.slots:
                if seq > self._gone_tasks.get(name, self._floor):
                    self._gone_tasks[name] = seq
                return False
            cls, row = self.slots.locate(name)
            held = int(cls.seq[row])
            if seq <= held and not force:
                return False
            self.slots.remove(name)
            self._gone_tasks[name] = max(seq, held)
            return True

    # ---- family writes -----------------------------------------------------------------------------
    def put_family(self, family: Family, seq: int) -> bool:
        """Serve ``family`` as written at ``seq``; False when the table holds a newer version."""
        if family.d != self.d:
            raise Conflict(f"family {family.name!r} has d={family.d}, the backbone has d_model={self.d}")
        with self._writing, self.lock:
            old = self.families.get(family.name)
            if seq <= self._families.known_seq(family.name, self._floor):
                return False
            if old is not None and old.length != family.length:
                # the store reshapes only a family without tasks: one held from before ``seq`` is stale
                # (its deletion was folded away by the feed, which shows each name's latest state)
                self._drop_stale_tasks(family.name, seq)
                if self.family_tasks(family.name):
                    raise Conflict(
                        f"family {family.name!r} has tasks of l={old.length}; cannot change it to l={family.length}"
                    )
            self._families.put(family, seq)
            if old is None:
                self.listing.families.add(family.name)
            return True

    def remove_family(self, name: str, seq: int) -> bool:
        """Stop serving family ``name`` (Conflict while tasks use it); False when a newer one is served."""
        with self._writing, self.lock:
            entry = self.families.get(name)
            if entry is None:
                if seq > self._families.known_seq(name, self._floor):
                    self._families.gone[name] = seq
                return False
            if seq <= entry.seq:
                return False
            users = self.family_tasks(name)
            if users:
                some = self.listing.some_tasks_of(name, 3)
                raise Conflict(f"family {name!r} is used by {users} task(s), e.g. {some}")
            self._families.remove(name, seq)
            self.listing.families.remove(name)
            return True

    def _drop_stale_tasks(self, family: str, seq: int) -> None:
        """(Locks held.) Stop serving the tasks of ``family`` held at a sequence below ``seq``."""
        for name in self.listing.some_tasks_of(family, self.family_tasks(family)):
            cls, row = self.slots.locate(name)
            held = int(cls.seq[row])
            if held < seq:
                self.slots.remove(name)
                self._gone_tasks[name] = max(held, self._floor)  # nothing older comes back

    # ---- the store sync's bookkeeping ------------------------------------------------------------------
    def advance(self, seq: int) -> None:
        """Every change up to ``seq`` is reflected: forget the deletions at or below it (an older
        write of such a name is refused by the floor instead)."""
        with self._writing, self.lock:
            self._floor = max(self._floor, seq)
            for gone in (self._gone_tasks, self._families.gone):
                for name in [n for n, s in gone.items() if s <= self._floor]:
                    del gone[name]

    def begin_load(self, tasks_hint: int) -> None:
        """A bulk load of about ``tasks_hint`` tasks starts: each slot class grows for the rows it
        receives (bounded by what the load can still deliver); listings are sorted once at the end."""
        with self.lock:
            if len(self.slots) or self._gone_tasks:
                raise RuntimeError("a bulk load needs an empty table")
            self._hint, self._loading = tasks_hint, True
            self.listing.begin_bulk()

    def end_load(self) -> None:
        """The load is done: every class keeps its rows plus bounded headroom (1/8) for uploads."""
        with self._writing, self.lock:
            self._hint, self._loading = 0, False
            self.listing.end_bulk()
            for cls in self.slots.classes.values():
                cls.trim()

    def begin_reload(self) -> None:
        """Before a full reload (the change feed was unavailable): every row may be rewritten."""
        with self._writing, self.lock:
            self._floor = -1
            self._gone_tasks.clear()
            for cls in self.slots.classes.values():
                cls.seq[: cls.size] = -1
            self._families.reset_seqs()

    def sweep(self, seq: int) -> tuple[int, int]:
        """After a full reload at ``seq``: drop what the reload did not see (held at a lower sequence).
        Returns (tasks, families) dropped."""
        with self._writing, self.lock:
            stale = self.slots.names_below(seq)
            for name in stale:
                self.remove_task(name, seq)
            families = [n for n, e in self.families.items() if e.seq < seq and not self.family_tasks(n)]
            for name in families:
                self.remove_family(name, seq)
            self.advance(seq)
            return len(stale), len(families)
