"""Every family's ``P*`` and every task's ``u, v`` resident on the serving device.

Tasks live in slot classes, one per (prompt length l, rank r) (:mod:`.slot_class`): one wide or
long task never widens the others' slots, and a class whose last task goes is dropped with its
memory. A task name maps to a *handle*, ``row << 16 | class id``: the one Python object per task
is that name -> handle entry (plus its place in the sorted listings, :mod:`.name_index`).
Families live in one small table per prompt length (:mod:`.family_table`).

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
from dataclasses import dataclass

import numpy as np
import torch

from prompts_store import Conflict, Family, NotFound, Task, TaskChunk, compose, compose_rows
from prompts_store.artifacts import check_factor_shapes

from . import created_at as created_codes
from .family_table import FamilyEntry, FamilyTable
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


class PromptTable:
    def __init__(self, d: int, device: torch.device, max_rank: int = 8):
        self.d, self.device, self.max_rank = d, device, max_rank
        self.lock = threading.RLock()  # readers and writers, for short sections
        self._writing = threading.RLock()  # writers, one at a time (taken before ``lock``)
        self._index: dict[str, int] = {}  # task name -> handle
        self._classes: dict[int, SlotClass] = {}
        self._class_ids: dict[tuple[int, int], int] = {}  # (l, r) -> class id
        self._free_class_ids: list[int] = []
        self._families = FamilyTable(d, device)
        self.families = self._families.entries  # name -> FamilyEntry (read-only outside this class)
        self._family_by_id = self._families.by_id
        self.listing = NameIndex()
        self._gone_tasks: dict[str, int] = {}  # name -> sequence of its deletion (until advance passes it)
        self._floor = -1  # every change up to here is reflected (the store sync's cursor)
        self._created_text: dict[str, str] = {}  # created_at kept verbatim when not canonical
        self._sources: list[str] = []
        self._source_ids: dict[str, int] = {}
        self._hint = 0  # task count of a bulk load: no class grows past what it can still deliver
        self._loading = False  # a bulk load into an empty table: names are new and unique, no checks

    # ---- reads -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index)

    def task(self, name: str) -> TaskEntry:
        """THE "task does not exist" (404) of the service: every lookup of a task by name ends here."""
        with self.lock:
            cls, row = self._locate(name)
            fam = self._family_by_id[int(cls.family[row])]
            return TaskEntry(
                name,
                fam.name,
                cls.r,
                cls.l,
                self._created(name, int(cls.created[row])),
                self._sources[int(cls.source[row])],
                int(cls.seq[row]),
            )

    def has_task(self, name: str) -> bool:
        return name in self._index

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
            return self._locate(name)[0].l

    def compose(self, names: list[str]) -> torch.Tensor:
        """Prompts (B, l, d) for tasks that share one prompt length l; NotFound if one is gone."""
        with self.lock:
            handles = [self._handle(n) for n in names]
            cids = [h & CLASS_MASK for h in handles]
            rows = [h >> SHIFT for h in handles]
            classes = {c: self._classes[c] for c in set(cids)}
            length = classes[cids[0]].l
            if any(c.l != length for c in classes.values()):
                raise ValueError("compose() needs tasks of one prompt length")
            fam_rows = [
                self._family_by_id[int(classes[c].family[r])].row for c, r in zip(cids, rows)
            ]  # the gathers below copy the rows, so later writes to a slot cannot reach this batch
            fam_idx = torch.tensor(fam_rows, device=self.device)  # (B,)
            shared = self._families.shared(length)
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
            return [self.task(n) for n in names], more

    def family_page(self, after: str | None, limit: int) -> tuple[list[tuple[FamilyEntry, int]], bool]:
        with self.lock:
            names, more = self.listing.family_page(after, limit)
            return [(self.families[n], self.family_tasks(n)) for n in names], more

    def nbytes(self) -> int:
        """Bytes of the resident tensors: every slot class's factors and every shared prompt."""
        with self.lock:
            tasks = sum(c.nbytes() for c in self._classes.values())
            shared = self._families.nbytes()
            return tasks + shared

    def classes(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(l, r) -> (tasks, capacity) of every slot class."""
        with self.lock:
            return {(c.l, c.r): (c.size, c.capacity) for c in self._classes.values()}

    # ---- task writes -------------------------------------------------------------------------------
    def put_task(self, task: Task, seq: int) -> bool:
        """Serve ``task`` as written at sequence ``seq``; False when the table holds a newer version.
        Raises NotFound / InvalidArtifact / Conflict when it cannot be served."""
        self.check_fits(task)
        self._check_rank(task.rank, task.name)
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
                fids, refused = self._family_ids(chunk)
                todo = np.flatnonzero(fids >= 0)
                sources = self._source_codes(chunk.source)
                cid = self._class_for(chunk.l, chunk.rank)
                cls = self._classes[cid]
                moves: list[tuple[int, int]] = []
                if not self._loading and (self._index or self._gone_tasks or seqs.min() <= self._floor):
                    todo, in_place, moves = self._sort_out(todo, chunk, seqs, cid)
                else:
                    in_place = []
            # growing copies the class: done outside the lock, so predictions go on meanwhile
            # during a bulk load no class needs room for more rows than the load has yet to deliver
            limit = cls.size + max(len(todo), self._hint - len(self._index)) if self._loading else None
            grown = cls.grown(len(todo), limit)
            with self.lock:
                if grown is not None:
                    cls.adopt(grown)
                for i, old_cid in moves:  # a name changing class (rank or length): out of its old one
                    handle = self._index[chunk.names[i]]
                    self._remove_row(chunk.names[i], old_cid, handle >> SHIFT, keep_class=cid)
                if in_place:
                    self._write_in_place(cls, chunk, in_place, seqs, created, fids, sources)
                if len(todo):
                    self._append(cls, cid, chunk, todo, seqs, created, fids, sources)
                self._keep_created_text(chunk, created, todo, in_place)
                if cls.size == 0:
                    self._drop_class(cid)
                return refused, len(todo) + len(in_place)

    def _write_in_place(self, cls, chunk, in_place, seqs, created, fids, sources) -> None:
        idx = [i for i, _ in in_place]
        old_families = [self._family_by_id[int(cls.family[row])].name for _, row in in_place]
        cls.write(
            [r for _, r in in_place], chunk.u[idx], chunk.v[idx], seqs[idx], created[idx], fids[idx], sources[idx]
        )
        for (i, _), old in zip(in_place, old_families):
            self.listing.move_task(chunk.names[i], old, chunk.families[i])

    def _append(self, cls, cid, chunk, todo, seqs, created, fids, sources) -> None:
        if len(todo) < len(chunk):
            names = [chunk.names[i] for i in todo.tolist()]
            families = [chunk.families[i] for i in todo.tolist()]
            u, v = chunk.u[todo], chunk.v[todo]
        else:
            names, families, u, v = chunk.names, chunk.families, chunk.u, chunk.v
        first = cls.append(u, v, seqs[todo], created[todo], fids[todo], sources[todo], names)
        handles = ((np.arange(first, first + len(todo), dtype=np.int64) << SHIFT) | cid).tolist()
        self._index.update(zip(names, handles))
        self.listing.add_tasks(names, families)
        if self._gone_tasks:
            for name in names:
                self._gone_tasks.pop(name, None)

    def remove_task(self, name: str, seq: int, force: bool = False) -> bool:
        """Stop serving ``name``, deleted at sequence ``seq``; False when a newer version is served
        (``force``: remove it whatever its sequence, for a task the store no longer holds)."""
        with self._writing, self.lock:
            handle = self._index.get(name)
            if handle is None:
                if seq > self._gone_tasks.get(name, self._floor):
                    self._gone_tasks[name] = seq
                return False
            cid, row = handle & CLASS_MASK, handle >> SHIFT
            cls = self._classes[cid]
            held = int(cls.seq[row])
            if seq <= held and not force:
                return False
            self._remove_row(name, cid, row)
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
            cls, row = self._locate(name)
            held = int(cls.seq[row])
            if held < seq:
                self._remove_row(name, self._index[name] & CLASS_MASK, row)
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
            if self._index or self._gone_tasks:
                raise RuntimeError("a bulk load needs an empty table")
            self._hint, self._loading = tasks_hint, True
            self.listing.begin_bulk()

    def end_load(self) -> None:
        """The load is done: every class keeps its rows plus bounded headroom (1/8) for uploads."""
        with self._writing, self.lock:
            self._hint, self._loading = 0, False
            self.listing.end_bulk()
            for cls in self._classes.values():
                cls.trim()

    def begin_reload(self) -> None:
        """Before a full reload (the change feed was unavailable): every row may be rewritten."""
        with self._writing, self.lock:
            self._floor = -1
            self._gone_tasks.clear()
            for cls in self._classes.values():
                cls.seq[: cls.size] = -1
            self._families.reset_seqs()

    def sweep(self, seq: int) -> tuple[int, int]:
        """After a full reload at ``seq``: drop what the reload did not see (held at a lower sequence).
        Returns (tasks, families) dropped."""
        with self._writing, self.lock:
            stale = []
            for cls in self._classes.values():
                stale += [cls.names[i] for i in np.flatnonzero(cls.seq[: cls.size] < seq).tolist()]
            for name in stale:
                self.remove_task(name, seq)
            families = [n for n, e in self.families.items() if e.seq < seq and not self.family_tasks(n)]
            for name in families:
                self.remove_family(name, seq)
            self.advance(seq)
            return len(stale), len(families)

    # ---- internals ---------------------------------------------------------------------------------
    def _handle(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise NotFound(f"task {name!r} does not exist") from None

    def _locate(self, name: str) -> tuple[SlotClass, int]:
        handle = self._handle(name)
        return self._classes[handle & CLASS_MASK], handle >> SHIFT

    def _created(self, name: str, code: int) -> str:
        return self._created_text.get(name, "") if code == created_codes.OTHER else created_codes.decode(code)

    def _check_rank(self, rank: int, name: str) -> None:
        if rank > self.max_rank:
            raise Conflict(f"task {name!r} has rank {rank}, over the server's limit MPT_MAX_RANK={self.max_rank}")

    def _family_ids(self, chunk: TaskChunk) -> tuple[np.ndarray, dict[str, str]]:
        """(n,) int32 family id per row (-1 where the family cannot take it) and the refusals."""
        ids: dict[str, int] = {}
        why: dict[str, str] = {}
        for f in set(chunk.families):
            entry = self.families.get(f)
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

    def _keep_created_text(
        self, chunk: TaskChunk, created: np.ndarray, todo: np.ndarray, in_place: list[tuple[int, int]]
    ) -> None:
        """Keep the text of the created_at values that are not canonical, for the rows applied."""
        applied = np.zeros(len(chunk), dtype=bool)
        applied[todo] = True
        applied[[i for i, _ in in_place]] = True
        for i in np.flatnonzero(applied & (created == created_codes.OTHER)).tolist():
            self._created_text[chunk.names[i]] = chunk.created_at[i]
        if self._created_text:  # a rewritten task whose text is now canonical
            for i, _ in in_place:
                if created[i] != created_codes.OTHER:
                    self._created_text.pop(chunk.names[i], None)

    def _source_codes(self, sources: list[str]) -> np.ndarray:
        for s in set(sources):
            if s not in self._source_ids:
                self._source_ids[s] = len(self._sources)
                self._sources.append(s)
        if sources.count(sources[0]) == len(sources):
            return np.full(len(sources), self._source_ids[sources[0]], dtype=np.int32)
        return np.array([self._source_ids[s] for s in sources], dtype=np.int32)

    def _sort_out(
        self, todo: np.ndarray, chunk: TaskChunk, seqs: np.ndarray, cid: int
    ) -> tuple[np.ndarray, list[tuple[int, int]], list[tuple[int, int]]]:
        """Rows to append (new names, and names moving from another class: ``moves``, (chunk row,
        old class)) and rows to rewrite in place ((chunk row, table row)); rows older than what the
        table holds are left out. Changes nothing."""
        append, in_place, moves = [], [], []
        for i in todo.tolist():
            name = chunk.names[i]
            handle = self._index.get(name)
            if handle is None:
                if seqs[i] > self._gone_tasks.get(name, self._floor):
                    append.append(i)
                continue
            old_cid, row = handle & CLASS_MASK, handle >> SHIFT
            if seqs[i] <= self._classes[old_cid].seq[row]:
                continue
            if old_cid == cid:
                in_place.append((i, row))
            else:
                moves.append((i, old_cid))
                append.append(i)
        return np.array(append, dtype=np.int64), in_place, moves

    def _remove_row(self, name: str, cid: int, row: int, keep_class: int | None = None) -> None:
        cls = self._classes[cid]
        family = self._family_by_id[int(cls.family[row])].name
        moved = cls.remove(row)
        if moved is not None:
            self._index[moved] = (row << SHIFT) | cid
        del self._index[name]
        self.listing.remove_task(name, family)
        self._created_text.pop(name, None)
        if cls.size == 0 and cid != keep_class:
            self._drop_class(cid)

    def _class_for(self, l: int, r: int) -> int:
        cid = self._class_ids.get((l, r))
        if cid is None:
            cid = self._free_class_ids.pop() if self._free_class_ids else len(self._class_ids)
            if cid > CLASS_MASK:
                raise Conflict(f"more than {CLASS_MASK + 1} (prompt length, rank) classes")
            self._class_ids[(l, r)] = cid
            self._classes[cid] = SlotClass(l, self.d, r, self.device)
        return cid

    def _drop_class(self, cid: int) -> None:
        cls = self._classes.pop(cid)
        del self._class_ids[(cls.l, cls.r)]
        self._free_class_ids.append(cid)
