"""The embedded store backend: a plain directory of safetensors files.

    <root>/families/<family>/shared.safetensors   P* [l, d] + backbone fingerprint
    <root>/tasks/<task>.safetensors               u [l, r], v [d, r] + family
    <root>/VERSION                                change counter, bumped by every mutation
    <root>/.lock                                  writers hold an exclusive flock on it

Every write is atomic (see :mod:`.atomic`); mutations run under the lock, so several processes
(training CLI, server replicas) can share one store. Readers take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from .artifacts import Family, Task
from .atomic import atomic_delete, atomic_write, fsync_dir, remove_stale_temp_files
from .codec import family_from_bytes, family_to_bytes, task_from_bytes, task_to_bytes
from .errors import Conflict, InvalidArtifact, NotFound
from .names import validate_name

SUFFIX = ".safetensors"
SHARED_FILE = "shared" + SUFFIX


class DirectoryStore:
    def __init__(self, root: str | os.PathLike, create: bool = True):
        self.root = Path(root)
        self.families_dir = self.root / "families"
        self.tasks_dir = self.root / "tasks"
        if not self.root.is_dir() and not create:
            raise NotFound(f"no prompt store at {self.root}")
        for d in (self.root, self.families_dir, self.tasks_dir):
            d.mkdir(parents=True, exist_ok=True)
        with self._locked():
            remove_stale_temp_files(self.tasks_dir)
            remove_stale_temp_files(self.root)
            for fam in self.families_dir.iterdir():
                if fam.is_dir():
                    remove_stale_temp_files(fam)

    def __repr__(self) -> str:
        return f"DirectoryStore({str(self.root)!r})"

    # ---- paths -------------------------------------------------------------------------------
    def family_path(self, name: str) -> Path:
        return self.families_dir / validate_name(name, "family") / SHARED_FILE

    def task_path(self, name: str) -> Path:
        return self.tasks_dir / (validate_name(name, "task") + SUFFIX)

    # ---- reads -------------------------------------------------------------------------------
    def version(self) -> int:
        try:
            return int((self.root / "VERSION").read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def list_families(self) -> list[str]:
        return sorted(
            p.parent.name for p in self.families_dir.glob(f"*/{SHARED_FILE}") if not p.parent.name.startswith(".")
        )

    def list_tasks(self) -> list[str]:
        return sorted(p.name[: -len(SUFFIX)] for p in self.tasks_dir.glob(f"*{SUFFIX}") if not p.name.startswith("."))

    def has_family(self, name: str) -> bool:
        return self.family_path(name).is_file()

    def has_task(self, name: str) -> bool:
        return self.task_path(name).is_file()

    def get_family(self, name: str) -> Family:
        return family_from_bytes(self._read(self.family_path(name), f"family {name!r}"), name=name)

    def get_task(self, name: str) -> Task:
        return task_from_bytes(self._read(self.task_path(name), f"task {name!r}"), name=name)

    def task_metadata(self, name: str) -> dict[str, str]:
        """The task file's metadata, read from its header only (no tensor data)."""
        return _header(self.task_path(name), f"task {name!r}").get("__metadata__", {})

    def tasks_of(self, family: str) -> list[str]:
        return [t for t in self.list_tasks() if self.task_metadata(t).get("family") == family]

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """``{"family/<name>" | "task/<name>": (mtime_ns, size)}``: cheap change detection for readers."""
        out = {}
        for kind, names, path in (
            ("family", self.list_families(), self.family_path),
            ("task", self.list_tasks(), self.task_path),
        ):
            for n in names:
                with contextlib.suppress(FileNotFoundError):
                    st = path(n).stat()
                    out[f"{kind}/{n}"] = (st.st_mtime_ns, st.st_size)
        return out

    # ---- writes ------------------------------------------------------------------------------
    def put_family(self, family: Family, overwrite: bool = False) -> int:
        """Persist a family; returns the new store version. Conflict if it exists and not ``overwrite``."""
        path = self.family_path(family.name)
        with self._locked():
            if path.is_file() and not overwrite:
                raise Conflict(f"family {family.name!r} already exists")
            if path.is_file():
                old = self.get_family(family.name)
                if (old.length, old.d) != (family.length, family.d) and self.tasks_of(family.name):
                    raise Conflict(
                        f"family {family.name!r} has tasks of shape l={old.length}, d={old.d}; "
                        f"cannot replace it with l={family.length}, d={family.d}"
                    )
            new_dir = not path.parent.is_dir()
            path.parent.mkdir(exist_ok=True)
            if new_dir:
                fsync_dir(self.families_dir)
            atomic_write(path, family_to_bytes(family))
            return self._bump()

    def put_task(self, task: Task, overwrite: bool = False) -> int:
        """Persist a task after checking its family exists and its shapes fit; returns the new version."""
        path = self.task_path(task.name)
        with self._locked():
            if path.is_file() and not overwrite:
                raise Conflict(f"task {task.name!r} already exists")
            if not self.has_family(task.family):
                raise NotFound(f"task {task.name!r}: family {task.family!r} does not exist")
            task.check_fits(self.get_family(task.family))
            atomic_write(path, task_to_bytes(task))
            return self._bump()

    def delete_task(self, name: str) -> int:
        path = self.task_path(name)
        with self._locked():
            if not atomic_delete(path):
                raise NotFound(f"task {name!r} does not exist")
            return self._bump()

    def delete_family(self, name: str) -> int:
        path = self.family_path(name)
        with self._locked():
            if not path.is_file():
                raise NotFound(f"family {name!r} does not exist")
            users = self.tasks_of(name)
            if users:
                raise Conflict(f"family {name!r} is used by {len(users)} task(s), e.g. {users[:3]}; delete them first")
            atomic_delete(path)
            path.parent.rmdir()
            fsync_dir(self.families_dir)
            return self._bump()

    # ---- internals ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def _bump(self) -> int:
        version = self.version() + 1
        atomic_write(self.root / "VERSION", f"{version}\n".encode())
        return version

    @staticmethod
    def _read(path: Path, what: str) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{what} does not exist") from None


def _header(path: Path, what: str) -> dict:
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or n > 100_000_000:
                raise InvalidArtifact(f"{what}: corrupt safetensors header")
            return json.loads(f.read(n))
    except FileNotFoundError:
        raise NotFound(f"{what} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidArtifact(f"{what}: corrupt safetensors header") from None
