"""The one store interface. Every backend (SQLite, PostgreSQL, directory) subclasses
:class:`Store`, which holds the rules once; a backend supplies a small write :class:`Transaction`
and its reads.

The change feed
---------------
Every mutation (a family or task written or deleted) takes the next sequence number; a batch of
``n`` tasks takes ``n`` consecutive ones. ``head()`` is the latest committed sequence.
``changes(since, limit)`` returns the changes after ``since`` in sequence order, each
``(kind, name)`` at most once with its LATEST state (``value`` None when deleted) and the sequence
of its latest mutation. Its cost grows with the number of changes, never with the store's size.

Contract for a reader that keeps a copy (e.g. a server's prompt table):

1. ``h = store.head()`` FIRST, then load everything (``iter_family_chunks``, ``iter_task_chunks``),
   then ``changes(h)``, and from then on ``changes(last seq applied)``.
2. Applying a change twice, or a change older than what was loaded, must be harmless: a change
   carries the name's latest state, so applying it is "make my copy of this name equal to this
   value". A write that lands while the bulk load runs is seen by the load, by ``changes(h)``, or
   both — never by neither.
3. Within one page, apply families before tasks and task deletions before family deletions. With a
   small ``limit`` a task may arrive a page before its (rewritten) family: a reader that does not
   know the family yet can ``get_family`` it.
4. A backend makes sequences visible in order (a reader that sees ``S`` sees every sequence below
   ``S``): SQLite and the directory serialise writers; PostgreSQL does it by taking the sequence
   row's lock (``SELECT ... FOR UPDATE``) first in the writing transaction, held until commit, so
   commits follow sequences (and the rules are checked under the same lock).
5. ``changes`` raises :class:`ChangesUnavailable` when ``since`` is older than the feed reaches back
   (a directory journal started on an existing store): reload in bulk.

Rules held here for every backend: names (``validate_name``), shapes (a task fits its family's
``l``, ``d`` via ``Task.check_fits``), dtypes and finiteness (the Family/Task constructors), the
family exists, no overwrite without ``overwrite=True`` (:class:`Conflict`), a family with tasks can
be neither deleted nor reshaped (:class:`Conflict`), :class:`NotFound` for missing names. Bulk
loads are screened here too (finiteness, family exists and fits) before rows reach a reader.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator

import torch

from mpt_core.artifacts import Family, Task, check_factor_shapes
from mpt_core.errors import Conflict, InvalidArtifact, NotFound
from mpt_core.names import validate_name

from .records import Change, FamilyChunk, FamilyInfo, ReadCounter, TaskChunk, TaskInfo
from .screen import finite_rows, screen_families, screen_tasks
from .transaction import Transaction

DEFAULT_CHUNK = 65_536


class Store(ABC):
    """A prompt store: families and tasks, a change feed, bulk reads and paginated listings. Every
    backend also implements the job queue (:class:`.job_queue.JobQueue`), the interface beside it."""

    backend: str = ""

    def __init__(self, url: str):
        self.url = url
        self.reads = ReadCounter()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 (optional: a backend without resources keeps it)
        """Release connections and file handles; the object is unusable afterwards."""

    def subscribe(self, callback: Callable[[int | None], None]) -> Callable[[], None]:
        """Ask to be woken when any process commits a change; returns the function that unsubscribes.

        Where the backend can notify (PostgreSQL: LISTEN/NOTIFY), ``callback(head)`` is called from a
        listener thread soon after each commit (``head`` may be None: "look now"); it must be quick
        and thread-safe (set an event, ``loop.call_soon_threadsafe``). Elsewhere it is never called:
        readers keep polling ``head()``, which they should do anyway as the fallback.
        """
        return _no_op

    # ---- what a backend implements ------------------------------------------------------------
    @abstractmethod
    def _transaction(self):  # -> ContextManager[Transaction]
        """A context manager: one serialised write transaction, committed durably on a clean exit."""

    @abstractmethod
    def head(self) -> int:
        """The latest committed sequence number (0 for an empty store)."""

    @abstractmethod
    def _changes(self, since: int, limit: int | None) -> list[Change]:
        """The feed after ``since`` (see the module docstring), values materialised."""

    @abstractmethod
    def _get_family(self, name: str) -> Family | None: ...

    @abstractmethod
    def _get_task(self, name: str) -> Task | None: ...

    @abstractmethod
    def _family_info(self, name: str) -> FamilyInfo | None: ...

    @abstractmethod
    def _task_info(self, name: str) -> TaskInfo | None: ...

    @abstractmethod
    def _list_families(self, after: str | None, limit: int | None) -> list[str]: ...

    @abstractmethod
    def _list_tasks(self, after: str | None, limit: int | None, family: str | None) -> list[str]: ...

    @abstractmethod
    def count_families(self) -> int: ...

    @abstractmethod
    def _count_tasks(self, family: str | None) -> int: ...

    @abstractmethod
    def _family_chunks(self) -> Iterator[FamilyChunk]: ...

    @abstractmethod
    def _task_chunks(self, chunk_size: int) -> Iterator[TaskChunk]: ...

    @abstractmethod
    def _task_totals(self) -> dict[str, tuple[int, int]]:
        """``{family: (tasks, bytes of their factors)}``."""

    @abstractmethod
    def _storage(self) -> dict:
        """Backend facts for ``stats()``: where it lives and how many bytes it takes on disk."""

    # ---- writes: the rules, once ------------------------------------------------------------------
    def put_family(self, family: Family, overwrite: bool = False) -> int:
        """Store a family; returns its sequence number. A family with tasks cannot change its (l, d)."""
        with self._transaction() as tx:
            return self._write_family(tx, family, overwrite)

    def _write_family(self, tx: Transaction, family: Family, overwrite: bool) -> int:
        """``put_family`` inside an open write transaction (a job's success writes through it too)."""
        if not isinstance(family, Family):
            raise InvalidArtifact(f"expected a Family, got {type(family).__name__}")
        old = tx.read_family(family.name)
        if old is not None:
            if not overwrite:
                raise Conflict(f"family {family.name!r} already exists")
            if (old.length, old.d) != (family.length, family.d):
                users, examples = tx.family_users(family.name, 3)
                if users:
                    raise Conflict(
                        f"family {family.name!r} has {users} task(s) of shape l={old.length}, d={old.d} "
                        f"(e.g. {examples}); cannot replace it with l={family.length}, d={family.d}"
                    )
        seq = tx.bump(1)
        tx.write_family(family, seq)
        return seq

    def put_task(self, task: Task, overwrite: bool = False) -> int:
        """Store one task after checking its family exists and its shapes fit; returns its sequence number."""
        return self.put_tasks([task], overwrite=overwrite)

    def put_tasks(self, tasks: Iterable[Task], overwrite: bool = False) -> int:
        """Store many tasks in ONE transaction, all or nothing: when any task is invalid, the error
        names it and nothing is written. Returns the sequence of the last one (the new head)."""
        tasks = list(tasks)
        if not tasks:
            return self.head()
        with self._transaction() as tx:
            return self._write_tasks(tx, tasks, overwrite)

    def _write_tasks(self, tx: Transaction, tasks: list[Task], overwrite: bool) -> int:
        """``put_tasks`` inside an open write transaction: every check, then the writes."""
        seen: set[str] = set()
        for t in tasks:
            if not isinstance(t, Task):
                raise InvalidArtifact(f"expected a Task, got {type(t).__name__}")
            if t.name in seen:
                raise InvalidArtifact(f"task {t.name!r} appears more than once in the batch")
            seen.add(t.name)
        families: dict[str, Family | None] = {}
        for t in tasks:
            if t.family not in families:
                families[t.family] = tx.read_family(t.family)
                self.reads.families += families[t.family] is not None
            fam = families[t.family]
            if fam is None:
                raise NotFound(f"task {t.name!r}: family {t.family!r} does not exist")
            t.check_fits(fam)
        if not overwrite:
            clash = tx.existing_tasks([t.name for t in tasks])
            if clash:
                first = next(t.name for t in tasks if t.name in clash)
                more = f" (and {len(clash) - 1} more)" if len(clash) > 1 else ""
                raise Conflict(f"task {first!r} already exists{more}")
        first_seq = tx.bump(len(tasks))
        tx.write_tasks(tasks, first_seq)
        return first_seq + len(tasks) - 1

    def put_task_chunk(self, chunk: TaskChunk, overwrite: bool = False) -> int:
        """Store a stack of tasks of one shape class (l, d, rank) in ONE transaction, all or nothing:
        the checks of :meth:`put_tasks`, vectorised, with no Task object per row (bulk writers:
        ``copy_store``, benchmarks). Returns the sequence of the last one."""
        n = len(chunk)
        if n == 0:
            return self.head()
        for name in chunk.names:
            validate_name(name, "task")
        if len(set(chunk.names)) != n:
            seen: set[str] = set()
            twice = next(x for x in chunk.names if x in seen or seen.add(x))
            raise InvalidArtifact(f"task {twice!r} appears more than once in the batch")
        want_u, want_v = (n, chunk.l, chunk.rank), (n, chunk.d, chunk.rank)
        if tuple(chunk.u.shape) != want_u or tuple(chunk.v.shape) != want_v or min(want_u + want_v) < 1:
            raise InvalidArtifact(
                f"a chunk of {n} tasks needs u {want_u} and v {want_v}, got "
                f"{tuple(chunk.u.shape)} and {tuple(chunk.v.shape)}"
            )
        if chunk.u.dtype != torch.float32 or chunk.v.dtype != torch.float32:
            raise InvalidArtifact(f"a chunk's factors must be float32, got {chunk.u.dtype} and {chunk.v.dtype}")
        bad = (~(finite_rows(chunk.u) & finite_rows(chunk.v))).nonzero().flatten().tolist()
        if bad:
            raise InvalidArtifact(f"task {chunk.names[bad[0]]!r}: factors hold non-finite values (NaN or Inf)")
        with self._transaction() as tx:
            for family in dict.fromkeys(chunk.families):
                fam = tx.read_family(validate_name(family, "family"))
                first = chunk.names[chunk.families.index(family)]
                if fam is None:
                    raise NotFound(f"task {first!r}: family {family!r} does not exist")
                self.reads.families += 1
                check_factor_shapes(first, want_u[1:], want_v[1:], family, fam.length, fam.d)
            if not overwrite:
                clash = tx.existing_tasks(chunk.names)
                if clash:
                    name = next(x for x in chunk.names if x in clash)
                    more = f" (and {len(clash) - 1} more)" if len(clash) > 1 else ""
                    raise Conflict(f"task {name!r} already exists{more}")
            first_seq = tx.bump(n)
            tx.write_task_chunk(chunk, first_seq)
            return first_seq + n - 1

    def delete_task(self, name: str) -> int:
        """Delete a task (a tombstone enters the feed); returns its sequence number."""
        validate_name(name, "task")
        with self._transaction() as tx:
            if not tx.existing_tasks([name]):
                raise NotFound(f"task {name!r} does not exist")
            seq = tx.bump(1)
            tx.delete_task(name, seq)
            return seq

    def delete_family(self, name: str) -> int:
        """Delete a family that no task uses; returns its sequence number."""
        validate_name(name, "family")
        with self._transaction() as tx:
            if tx.read_family(name) is None:
                raise NotFound(f"family {name!r} does not exist")
            users, examples = tx.family_users(name, 3)
            if users:
                raise Conflict(f"family {name!r} is used by {users} task(s), e.g. {examples}; delete them first")
            seq = tx.bump(1)
            tx.delete_family(name, seq)
            return seq

    # ---- reads -----------------------------------------------------------------------------------
    def changes(self, since: int, limit: int | None = None) -> list[Change]:
        """The changes after sequence ``since`` (see the module docstring for the reader's contract)."""
        if not isinstance(since, int) or since < 0:
            raise ValueError(f"since must be a sequence number >= 0, got {since!r}")
        _check_limit(limit)
        out = self._changes(since, limit)
        self.reads.tasks += sum(isinstance(c.value, Task) for c in out)
        self.reads.families += sum(isinstance(c.value, Family) for c in out)
        return out

    def get_family(self, name: str) -> Family:
        fam = self._get_family(validate_name(name, "family"))
        if fam is None:
            raise NotFound(f"family {name!r} does not exist")
        self.reads.families += 1
        return fam

    def get_task(self, name: str) -> Task:
        task = self._get_task(validate_name(name, "task"))
        if task is None:
            raise NotFound(f"task {name!r} does not exist")
        self.reads.tasks += 1
        return task

    def family_info(self, name: str) -> FamilyInfo:
        info = self._family_info(validate_name(name, "family"))
        if info is None:
            raise NotFound(f"family {name!r} does not exist")
        return info

    def task_info(self, name: str) -> TaskInfo:
        """A task's metadata (family, rank, l, d, created_at, source, seq) without reading its factors."""
        info = self._task_info(validate_name(name, "task"))
        if info is None:
            raise NotFound(f"task {name!r} does not exist")
        return info

    def has_family(self, name: str) -> bool:
        return self._family_info(validate_name(name, "family")) is not None

    def has_task(self, name: str) -> bool:
        return self._task_info(validate_name(name, "task")) is not None

    def list_families(self, after: str | None = None, limit: int | None = None) -> list[str]:
        """Family names sorted, those after ``after`` (exclusive), at most ``limit``."""
        _check_limit(limit)
        return self._list_families(_cursor(after), limit)

    def list_tasks(self, after: str | None = None, limit: int | None = None, family: str | None = None) -> list[str]:
        """Task names sorted, those after ``after`` (exclusive), at most ``limit``, of ``family`` when given."""
        _check_limit(limit)
        if family is not None:
            validate_name(family, "family")
        return self._list_tasks(_cursor(after), limit, family)

    def count_tasks(self, family: str | None = None) -> int:
        if family is not None:
            validate_name(family, "family")
        return self._count_tasks(family)

    def iter_family_chunks(self) -> Iterator[FamilyChunk]:
        """Every family, stacked by shape (l, d); non-finite ones are left out and named in ``rejected``."""
        for chunk in self._family_chunks():
            chunk = screen_families(chunk)
            self.reads.families += len(chunk)
            yield chunk

    def iter_task_chunks(self, chunk_size: int = DEFAULT_CHUNK) -> Iterator[TaskChunk]:
        """Every task, in chunks of at most ``chunk_size`` rows of one shape class (l, d, rank).

        Rows are screened here, vectorised: finite factors, and a family that exists with the same
        (l, d) (families are read once, when the iteration starts). Rows that fail are left out and
        named in the chunk's ``rejected``.
        """
        shapes = {}
        after = None
        while page := self._list_families(after, 1000):
            for name in page:
                info = self._family_info(name)
                if info is not None:
                    shapes[name] = (info.l, info.d)
            after = page[-1]
        for chunk in self._task_chunks(chunk_size):
            chunk = screen_tasks(chunk, shapes)
            self.reads.tasks += len(chunk)
            yield chunk

    def stats(self) -> dict:
        """Counts and sizes: families, tasks, bytes of factors, per family, head, backend, location."""
        totals = self._task_totals()
        families = {}
        for name in self._list_families(None, None):
            info = self._family_info(name)
            if info is None:
                continue
            n, nbytes = totals.get(name, (0, 0))
            families[name] = {"l": info.l, "d": info.d, "tasks": n, "factor_bytes": nbytes}
        return {
            "backend": self.backend,
            "url": self.url,
            "head": self.head(),
            "families": len(families),
            "tasks": sum(n for n, _ in totals.values()),
            "factor_bytes": sum(b for _, b in totals.values()),
            "shared_bytes": sum(f["l"] * f["d"] * 4 for f in families.values()),
            "by_family": families,
            **self._storage(),
        }


def _no_op() -> None:
    pass


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")


def _cursor(after: str | None) -> str | None:
    return None if after is None else validate_name(after, "cursor")
