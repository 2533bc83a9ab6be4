"""The interchange backend: a plain directory of safetensors files (inspectable, committable, PEFT export).

    <root>/families/<family>/shared.safetensors   P* [l, d] + backbone fingerprint
    <root>/tasks/<task>.safetensors               u [l, r], v [d, r] + family
    <root>/journal                                the change feed (see :mod:`.journal`)
    <root>/VERSION                                the committed head: the last sequence readers may see
    <root>/.lock                                  writers hold an exclusive flock on it

A write, under the lock: append its journal line(s) and fsync; write the file(s) atomically (temp +
fsync + rename + directory fsync, :mod:`.atomic`); then write VERSION. Readers take no lock: they
read VERSION, then the journal lines up to it, and resolve each name to its file's CURRENT content
(no file = deleted). A crash between the journal and the file therefore leaves a line that resolves
to whatever the file holds — the old content, or the whole new one — which readers apply as latest
state; the next writer (or the next writer's open) advances VERSION over such lines.

``put_tasks`` validates the whole batch before it writes anything, so an invalid task writes nothing.
Its files are then written as one :func:`.atomic.atomic_write_many`: a crash while the temp files
are written leaves none of the batch; a crash during the renames leaves the first tasks of the batch
new and the rest as they were, each file whole. Such a batch was never acknowledged, and the journal
already names all of it, so readers resolve each name to whichever file is there.

Opening for reading (``create=False``: a copy's source, ``stats``, an export) creates, locks and
changes nothing, so a read-only store (a root-owned folder in an image, a read-only mount) opens;
a writer's open (``create=True``) makes the layout, removes temp files of interrupted writes and
recovers (below) under the lock, and every write recovers under the lock before it writes.

A store without a journal (e.g. the committed demo, which has only VERSION) opens fine: its head is
VERSION (or 0) and its journal starts there at the first write. Files added by hand, outside the
store, are not in the feed: a reader sees them at its next bulk load.

Costs that grow with the number of tasks (fine for interchange, the reason SQLite is the default):
listings sort the directory, a family filter or ``family_users`` reads every task header.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from mpt_core.artifacts import Family, Task
from mpt_core.errors import ChangesUnavailable, InvalidArtifact, InvalidName, NotFound
from mpt_core.names import validate_name

from ..blobs import TaskChunkBuilder, family_chunks, to_blob
from ..codec import (
    family_from_bytes,
    family_to_bytes,
    header_shape,
    read_header,
    task_from_bytes,
    task_row,
    task_to_bytes,
)
from ..job_queue import JobQueue, no_jobs
from ..records import Change, FamilyChunk, FamilyInfo, TaskChunk, TaskInfo
from ..store import Store
from ..transaction import Transaction
from .atomic import atomic_delete, atomic_write, atomic_write_many, fsync_dir, remove_stale_temp_files
from .journal import Entry, Journal

SUFFIX = ".safetensors"
SHARED_FILE = "shared" + SUFFIX


class DirectoryStore(Store, JobQueue):
    backend = "directory"

    # no job table: every job operation answers JobsUnsupported
    def _jobs(self):
        raise no_jobs(self.url)

    def _job_reads(self):
        raise no_jobs(self.url)

    def __init__(self, root: str | os.PathLike, create: bool = True):
        self.root = Path(root)
        super().__init__(str(self.root))
        self.families_dir = self.root / "families"
        self.tasks_dir = self.root / "tasks"
        if not self.root.is_dir() and not create:
            raise NotFound(f"no prompt store at {self.root}")
        self.journal = Journal(self.root / "journal")
        self._tidy = True  # a crashed writer's temp files are still to be removed (by the next writer)
        if create:  # a writer's open: make the layout, finish what a crashed writer left
            with self._locked():
                self._tidy_up()
                self._recover()
        # else a reader's open (``create=False``): it changes nothing, so a read-only store opens;
        # its first write (if any) does the above under the lock, before it writes

    def _tidy_up(self) -> None:
        """(Lock held.) The layout's folders, and no temp file of an interrupted write."""
        for d in (self.families_dir, self.tasks_dir):
            d.mkdir(exist_ok=True)
        remove_stale_temp_files(self.tasks_dir)
        remove_stale_temp_files(self.root)
        for fam in self.families_dir.iterdir():
            if fam.is_dir():
                remove_stale_temp_files(fam)
        self._tidy = False

    # ---- paths: the file that holds an artefact --------------------------------------------------------
    def family_path(self, name: str) -> Path:
        return self.families_dir / validate_name(name, "family") / SHARED_FILE

    def task_path(self, name: str) -> Path:
        return self.tasks_dir / (validate_name(name, "task") + SUFFIX)

    # ---- writes ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The writers' exclusive lock (only writers take it: readers never touch the store's files)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def _recover(self) -> None:
        """(Lock held.) Finish what a crashed writer left: a partial journal line, VERSION behind the journal."""
        if not self.journal.exists():
            return
        self.journal.repair()
        last = self.journal.last_seq()
        if last is not None and last > self.head():
            self._write_version(last)

    def _write_version(self, seq: int) -> None:
        atomic_write(self.root / "VERSION", f"{seq}\n".encode())

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        with self._locked():
            if self._tidy:
                self._tidy_up()
            self._recover()
            tx = _DirectoryTransaction(self)
            try:
                yield tx
            finally:
                if tx.logged_through is not None:  # also after an error: lines resolve to current content
                    self._write_version(tx.logged_through)

    # ---- reads ------------------------------------------------------------------------------------
    def head(self) -> int:
        try:
            return int((self.root / "VERSION").read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def _changes(self, since: int, limit: int | None) -> list[Change]:
        head = self.head()
        if since >= head:
            return []
        base = self.journal.base()
        if base is None or since < base:
            raise ChangesUnavailable(
                f"{self.root}: changes since {since} are not in the journal (it starts after "
                f"{head if base is None else base}); reload the store in bulk"
            )
        latest: dict[tuple[str, str], Entry] = {}
        for e in self.journal.read(since, head, limit):
            latest.pop((e.kind, e.name), None)
            latest[(e.kind, e.name)] = e  # insertion order = order of latest sequence
        out = []
        for (kind, name), e in latest.items():
            try:
                value = self._get_family(name) if kind == "family" else self._get_task(name)
                out.append(Change(e.seq, kind, name, value, committed_at=e.at))
            except InvalidArtifact as err:
                out.append(Change(e.seq, kind, name, None, str(err), committed_at=e.at))
        return out

    def _get_family(self, name: str) -> Family | None:
        data = _read_or_none(self.family_path(name))
        return None if data is None else family_from_bytes(data, name=name)

    def _get_task(self, name: str) -> Task | None:
        data = _read_or_none(self.task_path(name))
        return None if data is None else task_from_bytes(data, name=name)

    def has_family(self, name: str) -> bool:
        return self.family_path(name).is_file()

    def has_task(self, name: str) -> bool:
        return self.task_path(name).is_file()

    def _family_info(self, name: str) -> FamilyInfo | None:
        header = read_header(self.family_path(name), f"family {name!r}")
        if header is None:
            return None
        meta, (l, d) = header.get("__metadata__", {}), header_shape(header, "shared", f"family {name!r}")
        try:
            fingerprint = json.loads(meta.get("fingerprint", "{}"))
        except json.JSONDecodeError:
            raise InvalidArtifact(f"family {name!r}: metadata 'fingerprint' is not JSON") from None
        return FamilyInfo(name, l, d, fingerprint, meta.get("created_at", ""), meta.get("source", ""), None)

    def _task_info(self, name: str) -> TaskInfo | None:
        header = read_header(self.task_path(name), f"task {name!r}")
        if header is None:
            return None
        meta = header.get("__metadata__", {})
        (l, r), (d, _) = header_shape(header, "u", f"task {name!r}"), header_shape(header, "v", f"task {name!r}")
        return TaskInfo(name, meta.get("family", ""), r, l, d, meta.get("created_at", ""), meta.get("source", ""), None)

    def _all_families(self) -> list[str]:
        return sorted(
            p.parent.name
            for p in self.families_dir.glob(f"*/{SHARED_FILE}")
            if not p.parent.name.startswith(".") and _valid(p.parent.name)
        )

    def _scan_tasks(self) -> list[os.DirEntry]:
        try:
            return list(os.scandir(self.tasks_dir))
        except FileNotFoundError:  # a store no writer has written yet (opened by a reader)
            return []

    def _all_tasks(self) -> list[str]:
        names = (e.name[: -len(SUFFIX)] for e in self._scan_tasks() if e.name.endswith(SUFFIX))
        return sorted(n for n in names if not n.startswith(".") and _valid(n))

    def _list_families(self, after: str | None, limit: int | None) -> list[str]:
        return _page(self._all_families(), after, limit)

    def _list_tasks(self, after: str | None, limit: int | None, family: str | None) -> list[str]:
        names = _page(self._all_tasks(), after, None)
        if family is None:
            return names[:limit]
        out = []
        for n in names:
            info = self._task_info_or_none(n)
            if info is not None and info.family == family:
                out.append(n)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def count_families(self) -> int:
        return len(self._all_families())

    def _count_tasks(self, family: str | None) -> int:
        if family is None:
            return len(self._all_tasks())
        return len(self._list_tasks(None, None, family))

    def _family_chunks(self) -> Iterator[FamilyChunk]:
        rows = []
        for name in self._all_families():
            fam = self._get_family(name)
            if fam is not None:
                rows.append((name, fam.fingerprint, fam.length, fam.d, fam.created_at, fam.source, to_blob(fam.shared)))
        yield from family_chunks(rows)

    def _task_chunks(self, chunk_size: int) -> Iterator[TaskChunk]:
        builder = TaskChunkBuilder(chunk_size)
        rows: list[tuple] = []
        for entry in self._scan_tasks():
            name = entry.name[: -len(SUFFIX)]
            if not entry.name.endswith(SUFFIX) or name.startswith(".") or not _valid(name):
                continue
            try:
                rows.append(task_row(name, Path(entry.path).read_bytes()))
            except FileNotFoundError:
                continue  # deleted while we listed
            except InvalidArtifact as e:
                builder.reject(name, str(e))
                continue
            if len(rows) >= 4096:
                yield from builder.add_block(*zip(*rows))
                rows = []
        if rows:
            yield from builder.add_block(*zip(*rows))
        yield from builder.flush()

    def _task_totals(self) -> dict[str, tuple[int, int]]:
        totals: dict[str, tuple[int, int]] = {}
        for n in self._all_tasks():
            info = self._task_info_or_none(n)
            if info is not None:
                count, nbytes = totals.get(info.family, (0, 0))
                totals[info.family] = (count + 1, nbytes + info.nbytes)
        return totals

    def _storage(self) -> dict:
        size = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        return {"path": str(self.root), "disk_bytes": size, "journal_base": self.journal.base()}

    def _task_info_or_none(self, name: str) -> TaskInfo | None:
        try:
            return self._task_info(name)
        except InvalidArtifact:
            return None


class _DirectoryTransaction(Transaction):
    def __init__(self, store: DirectoryStore):
        self.s = store
        last = store.journal.last_seq()
        self.next = max(store.head(), last or 0) + 1
        self.logged_through: int | None = None
        self.now = time.time()

    def _log(self, entries: list[Entry]) -> None:
        if not self.s.journal.exists():
            self.s.journal.create(base=entries[0].seq - 1)
        self.s.journal.append(entries)
        self.logged_through = entries[-1].seq

    def read_family(self, name: str) -> Family | None:
        return self.s._get_family(name)

    def existing_tasks(self, names: Sequence[str]) -> set[str]:
        return {n for n in names if self.s.task_path(n).is_file()}

    def family_users(self, name: str, examples: int) -> tuple[int, list[str]]:
        users = self.s._list_tasks(None, None, name)
        return len(users), users[:examples]

    def bump(self, n: int) -> int:
        first, self.next = self.next, self.next + n
        self.now = time.time()  # the commit time readers measure their lag from
        return first

    def write_family(self, family: Family, seq: int) -> None:
        self._log([Entry(seq, "put", "family", family.name, self.now)])
        path = self.s.family_path(family.name)
        if not path.parent.is_dir():
            path.parent.mkdir()
            fsync_dir(self.s.families_dir)
        atomic_write(path, family_to_bytes(family))

    def write_tasks(self, tasks: Sequence[Task], first_seq: int) -> None:
        self._log([Entry(first_seq + i, "put", "task", t.name, self.now) for i, t in enumerate(tasks)])
        atomic_write_many((self.s.task_path(t.name), task_to_bytes(t)) for t in tasks)

    def delete_family(self, name: str, seq: int) -> None:
        self._log([Entry(seq, "del", "family", name, self.now)])
        path = self.s.family_path(name)
        atomic_delete(path)
        path.parent.rmdir()
        fsync_dir(self.s.families_dir)

    def delete_task(self, name: str, seq: int) -> None:
        self._log([Entry(seq, "del", "task", name, self.now)])
        atomic_delete(self.s.task_path(name))


def _valid(name: str) -> bool:
    try:
        validate_name(name)
    except InvalidName:
        return False
    return True


def _page(names: list[str], after: str | None, limit: int | None) -> list[str]:
    if after is not None:
        names = names[bisect.bisect_right(names, after) :]
    return names if limit is None else names[:limit]


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
