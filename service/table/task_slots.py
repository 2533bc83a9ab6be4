"""Where the prompt table keeps its tasks: rows of slot classes, addressed by name.

Tasks live in slot classes, one per (prompt length l, rank r) (:mod:`.slot_class`): one wide or
long task never widens the others' slots, and a class whose last task goes is dropped with its
memory. A task name maps to a *handle*, ``row << 16 | class id``: the one Python object per task
is that name -> handle entry (plus its place in the sorted listings, :mod:`.name_index`). A row
refers to its family by id, to its source by an interned code (:mod:`.interned`) and keeps its
created_at encoded (:mod:`.created_at`; the text of a non-canonical one is kept by name).

This is storage only: no locks and no sequence rule. :class:`.prompt_table.PromptTable` decides
which rows to write and calls these under its locks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mpt_core import compose, compose_rows
from prompts_store import Conflict, NotFound, TaskChunk

from . import created_at as created_codes
from .family_table import FamilyTable
from .interned import Interned
from .name_index import NameIndex
from .slot_class import SlotClass

SHIFT, CLASS_MASK = 16, (1 << 16) - 1


@dataclass(frozen=True)
class TaskEntry:
    """A task as served, described from its row (built on demand: the table keeps no object per task)."""

    name: str
    family: str
    rank: int
    length: int
    created_at: str
    source: str
    seq: int


@dataclass
class RowValues:
    """The per-row values of a chunk being written (each (n,), indexed by chunk row)."""

    seqs: np.ndarray
    created: np.ndarray
    fids: np.ndarray
    sources: np.ndarray


class TaskSlots:
    def __init__(self, d: int, device: torch.device, families: FamilyTable, listing: NameIndex):
        self.d, self.device = d, device
        self.families, self.listing = families, listing
        self.index: dict[str, int] = {}  # task name -> handle
        self.classes: dict[int, SlotClass] = {}
        self._class_ids: dict[tuple[int, int], int] = {}  # (l, r) -> class id
        self._free_class_ids: list[int] = []
        self.sources = Interned()
        self.created_text: dict[str, str] = {}  # created_at kept verbatim when not canonical

    # ---- reads -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, name: str) -> bool:
        return name in self.index

    def handle(self, name: str) -> int:
        """THE "task does not exist" (404) of the service: every lookup of a task by name ends here."""
        try:
            return self.index[name]
        except KeyError:
            raise NotFound(f"task {name!r} does not exist") from None

    def locate(self, name: str) -> tuple[SlotClass, int]:
        handle = self.handle(name)
        return self.classes[handle & CLASS_MASK], handle >> SHIFT

    def entry(self, name: str) -> TaskEntry:
        cls, row = self.locate(name)
        return TaskEntry(
            name,
            self.families.by_id[int(cls.family[row])].name,
            cls.r,
            cls.l,
            self._created(name, int(cls.created[row])),
            self.sources.value(int(cls.source[row])),
            int(cls.seq[row]),
        )

    def compose(self, names: list[str]) -> torch.Tensor:
        """Prompts (B, l, d) for tasks that share one prompt length l; NotFound if one is gone."""
        handles = [self.handle(n) for n in names]
        cids = [h & CLASS_MASK for h in handles]
        rows = [h >> SHIFT for h in handles]
        classes = {c: self.classes[c] for c in set(cids)}
        length = classes[cids[0]].l
        if any(c.l != length for c in classes.values()):
            raise ValueError("compose() needs tasks of one prompt length")
        fam_rows = [
            self.families.by_id[int(classes[c].family[r])].row for c, r in zip(cids, rows)
        ]  # the gathers below copy the rows, so later writes to a slot cannot reach this batch
        fam_idx = torch.tensor(fam_rows, device=self.device)  # (B,)
        shared = self.families.shared(length)
        if len(classes) == 1:
            cls = classes[cids[0]]
            return compose_rows(shared, cls.u, cls.v, fam_idx, torch.tensor(rows, device=self.device))
        rank = max(c.r for c in classes.values())  # rows of several ranks: zero columns add nothing
        u = torch.zeros(len(names), length, rank, device=self.device)  # (B, l, r_max)
        v = torch.zeros(len(names), self.d, rank, device=self.device)  # (B, d, r_max)
        for c, cls in classes.items():
            pos = [i for i, ci in enumerate(cids) if ci == c]
            src = torch.tensor([rows[i] for i in pos], device=self.device)
            dst = torch.tensor(pos, device=self.device)
            u[dst, :, : cls.r] = cls.u[src]
            v[dst, :, : cls.r] = cls.v[src]
        return compose(shared[fam_idx], u, v)

    def nbytes(self) -> int:
        return sum(c.nbytes() for c in self.classes.values())

    def shapes(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(l, r) -> (tasks, capacity) of every slot class."""
        return {(c.l, c.r): (c.size, c.capacity) for c in self.classes.values()}

    def names_below(self, seq: int) -> list[str]:
        """Tasks held at a sequence below ``seq``."""
        stale = []
        for cls in self.classes.values():
            stale += [cls.names[i] for i in np.flatnonzero(cls.seq[: cls.size] < seq).tolist()]
        return stale

    # ---- rows --------------------------------------------------------------------------------------
    def class_for(self, l: int, r: int) -> int:
        cid = self._class_ids.get((l, r))
        if cid is None:
            cid = self._free_class_ids.pop() if self._free_class_ids else len(self._class_ids)
            if cid > CLASS_MASK:
                raise Conflict(f"more than {CLASS_MASK + 1} (prompt length, rank) classes")
            self._class_ids[(l, r)] = cid
            self.classes[cid] = SlotClass(l, self.d, r, self.device)
        return cid

    def drop_class(self, cid: int) -> None:
        cls = self.classes.pop(cid)
        del self._class_ids[(cls.l, cls.r)]
        self._free_class_ids.append(cid)

    def append(self, cid: int, chunk: TaskChunk, todo: np.ndarray, values: RowValues) -> None:
        """Add the chunk rows ``todo`` (names not in the table) at the end of class ``cid``."""
        cls = self.classes[cid]
        if len(todo) < len(chunk):
            names = [chunk.names[i] for i in todo.tolist()]
            families = [chunk.families[i] for i in todo.tolist()]
            u, v = chunk.u[todo], chunk.v[todo]
        else:
            names, families, u, v = chunk.names, chunk.families, chunk.u, chunk.v
        sources = values.sources[todo]
        first = cls.append(u, v, values.seqs[todo], values.created[todo], values.fids[todo], sources, names)
        self.sources.hold(sources)
        handles = ((np.arange(first, first + len(todo), dtype=np.int64) << SHIFT) | cid).tolist()
        self.index.update(zip(names, handles))
        self.listing.add_tasks(names, families)

    def write_in_place(self, cid: int, chunk: TaskChunk, in_place: list[tuple[int, int]], values: RowValues) -> None:
        """Rewrite rows of class ``cid``: ``in_place`` pairs (chunk row, table row)."""
        cls = self.classes[cid]
        idx = [i for i, _ in in_place]
        rows = [r for _, r in in_place]
        old_families = [self.families.by_id[int(f)].name for f in cls.family[rows]]
        old_sources = cls.source[rows].copy()
        cls.write(
            rows,
            chunk.u[idx],
            chunk.v[idx],
            values.seqs[idx],
            values.created[idx],
            values.fids[idx],
            values.sources[idx],
        )
        self.sources.hold(values.sources[idx])
        self.sources.release(old_sources)  # after hold: a source kept by its rewrite stays
        for i, old in zip(idx, old_families):
            self.listing.move_task(chunk.names[i], old, chunk.families[i])

    def remove(self, name: str, keep_class: int | None = None) -> None:
        """Free the row of ``name`` (its class goes with its last row, unless it is ``keep_class``)."""
        handle = self.index[name]
        cid, row = handle & CLASS_MASK, handle >> SHIFT
        cls = self.classes[cid]
        family = self.families.by_id[int(cls.family[row])].name
        self.sources.release(cls.source[row : row + 1].copy())
        moved = cls.remove(row)
        if moved is not None:
            self.index[moved] = (row << SHIFT) | cid
        del self.index[name]
        self.listing.remove_task(name, family)
        self.created_text.pop(name, None)
        if cls.size == 0 and cid != keep_class:
            self.drop_class(cid)

    def keep_created_text(
        self, chunk: TaskChunk, created: np.ndarray, applied: np.ndarray, rewritten: list[int]
    ) -> None:
        """Keep the text of the created_at values that are not canonical, for the rows applied
        (``applied``: a mask over the chunk; ``rewritten``: chunk rows written in place)."""
        for i in np.flatnonzero(applied & (created == created_codes.OTHER)).tolist():
            self.created_text[chunk.names[i]] = chunk.created_at[i]
        if self.created_text:  # a rewritten task whose text is now canonical
            for i in rewritten:
                if created[i] != created_codes.OTHER:
                    self.created_text.pop(chunk.names[i], None)

    def _created(self, name: str, code: int) -> str:
        return self.created_text.get(name, "") if code == created_codes.OTHER else created_codes.decode(code)
