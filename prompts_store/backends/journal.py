"""The directory store's change log: an append-only text file, one line per mutation.

    mpt-serve journal 1 base=<seq>          the header: the feed starts after sequence <seq>
    <seq> put|del family|task <name> [<t>]  one line per mutation, sequences strictly increasing;
                                            <t>: the commit time (Unix seconds; absent in older lines)

Writers append under the store's lock and fsync before they touch the file the line names, so a
line may name a change that a crash never made; readers resolve every name to the file's current
content, which makes that harmless (see :mod:`.directory`). Reading after a sequence finds its
place by bisection (or from where the last read stopped): the cost is O(log size + lines read).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, NamedTuple

from mpt_core.errors import StoreError
from mpt_core.names import validate_name

from .atomic import atomic_write

MAGIC = "mpt-serve journal 1"
_LINEAR_BELOW = 4096  # bytes: below this span, bisection gives way to a scan


class Entry(NamedTuple):
    seq: int
    op: str  # "put" | "del"
    kind: str  # "family" | "task"
    name: str
    at: float | None = None  # commit time, Unix seconds


class Journal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._resume: tuple[int, int] | None = None  # (seq, byte offset just after its line) of the last read

    def exists(self) -> bool:
        return self.path.is_file()

    def base(self) -> int | None:
        """The sequence the journal starts after, or None when there is no journal."""
        try:
            with open(self.path, "rb") as f:
                header = f.readline().decode("ascii", "replace").strip()
        except FileNotFoundError:
            return None
        if not header.startswith(MAGIC + " base="):
            raise StoreError(f"{self.path}: not an mpt-serve journal (header {header[:60]!r})")
        return int(header.rsplit("=", 1)[1])

    # ---- writer side (call with the store's lock held) ---------------------------------------------
    def create(self, base: int) -> None:
        """A new journal holding only its header (written atomically, its directory fsynced)."""
        atomic_write(self.path, f"{MAGIC} base={base}\n".encode())

    def repair(self) -> None:
        """Cut a partial last line (a crash during an append; that write was never acknowledged)."""
        with open(self.path, "r+b") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(max(0, size - _LINEAR_BELOW))
            tail = f.read()
            if tail.endswith(b"\n"):
                return
            cut = tail.rfind(b"\n")
            if cut < 0:
                raise StoreError(f"{self.path}: last line longer than {_LINEAR_BELOW} bytes; the journal is damaged")
            f.truncate(size - len(tail) + cut + 1)
            f.flush()
            os.fsync(f.fileno())

    def last_seq(self) -> int | None:
        """The sequence of the last complete line (the base when there is none), None without a journal."""
        base = self.base()
        if base is None:
            return None
        with open(self.path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _LINEAR_BELOW))
            lines = f.read().split(b"\n")[:-1]  # the piece after the last newline is partial or empty
        for line in reversed(lines):
            entry = _parse(line)
            if entry is not None:
                return entry.seq
        return base

    def append(self, entries: list[Entry]) -> None:
        """Append and fsync (the file exists since :meth:`create`); afterwards the lines survive a crash."""
        data = "".join(
            f"{e.seq} {e.op} {e.kind} {e.name}" + ("" if e.at is None else f" {e.at:.3f}") + "\n" for e in entries
        ).encode()
        with open(self.path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    # ---- reader side (no lock) --------------------------------------------------------------------
    def read(self, since: int, until: int, limit: int | None) -> list[Entry]:
        """Complete lines with ``since < seq <= until``, in order, at most ``limit`` of them."""
        out: list[Entry] = []
        with open(self.path, "rb") as f:
            pos = self._offset_after(f, since)
            f.seek(pos)
            for line in f:
                if not line.endswith(b"\n"):
                    break  # an append in progress (or cut by a crash)
                pos += len(line)
                entry = _parse(line)
                if entry is None or entry.seq <= since:
                    continue
                if entry.seq > until:
                    break
                out.append(entry)
                self._resume = (entry.seq, pos)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def _offset_after(self, f: BinaryIO, since: int) -> int:
        """Byte offset of the first line whose sequence is above ``since`` (or a little before it)."""
        if self._resume is not None and self._resume[0] == since:
            return self._resume[1]
        lo = len(f.readline())  # after the header; every line starting before lo has seq <= since
        hi = f.seek(0, os.SEEK_END)  # every line starting at or after hi has seq > since
        while hi - lo > _LINEAR_BELOW:
            mid = (lo + hi) // 2
            f.seek(mid - 1)
            f.readline()
            start = f.tell()  # the first line starting at or after mid
            if start >= hi:
                break
            line = f.readline()
            entry = _parse(line) if line.endswith(b"\n") else None
            if entry is not None and entry.seq <= since:
                lo = start + len(line)
            else:
                hi = start
        return lo


def _parse(line: bytes) -> Entry | None:
    """A journal line, or None for anything malformed (never a path from an invalid name)."""
    parts = line.decode("ascii", "replace").split()
    if len(parts) not in (4, 5) or parts[1] not in ("put", "del") or parts[2] not in ("family", "task"):
        return None
    try:
        at = float(parts[4]) if len(parts) == 5 else None
        return Entry(int(parts[0]), parts[1], parts[2], validate_name(parts[3], parts[2]), at)
    except ValueError:  # a bad number, or InvalidName (a ValueError)
        return None
