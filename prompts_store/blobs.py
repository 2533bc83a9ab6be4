"""Tensors as raw little-endian float32 bytes, and many such blobs stacked into one tensor.

Database backends store a matrix as its row-major float32 bytes plus its shape in columns, so that
bulk loading is ``b"".join(blobs)`` -> one buffer -> one ``(n, rows, cols)`` view: no tensor and
no Python object per record beyond the blob the database driver hands out.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import torch

from mpt_core.errors import InvalidArtifact

from .records import FamilyChunk, TaskChunk

_LITTLE_ENDIAN = sys.byteorder == "little"
Blob = bytes | memoryview


def to_blob(t: torch.Tensor) -> bytes:
    """A matrix as row-major little-endian float32 bytes."""
    a = t.detach().to("cpu", torch.float32).contiguous().numpy()
    return a.astype("<f4", copy=False).tobytes()


def stack_blobs(blobs: Sequence[Blob], rows: int, cols: int) -> torch.Tensor:
    """``n`` blobs of ``rows * cols`` floats each -> (n, rows, cols) float32, in one copy."""
    buf = bytearray().join(blobs)
    if len(buf) != len(blobs) * rows * cols * 4:
        raise InvalidArtifact(f"{len(blobs)} blob(s) hold {len(buf)} bytes, expected {len(blobs)}x{rows}x{cols}x4")
    arr = np.frombuffer(buf, dtype="<f4")
    if not _LITTLE_ENDIAN:
        arr = arr.astype(np.float32)
    return torch.from_numpy(arr).view(len(blobs), rows, cols)  # (n, rows, cols)


def from_blob(blob: Blob, rows: int, cols: int, what: str) -> torch.Tensor:
    """One blob -> (rows, cols) float32."""
    if len(blob) != rows * cols * 4:
        raise InvalidArtifact(f"{what}: {len(blob)} bytes stored, expected {rows}x{cols} float32")
    return stack_blobs([blob], rows, cols)[0]


class _Rows:
    """Columns of the rows gathered so far for one shape class."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.families: list = []  # family names (tasks) or fingerprints (families)
        self.created_at: list[str] = []
        self.source: list[str] = []
        self.a: list[Blob] = []  # u (tasks) or shared (families)
        self.b: list[Blob] = []  # v (tasks)
        self.rejected: dict[str, str] = {}

    def split(self, n: int) -> tuple[_Rows, _Rows]:
        """(the first n rows, the rest)."""
        head, rest = _Rows(), _Rows()
        for col in ("names", "families", "created_at", "source", "a", "b"):
            values = getattr(self, col)
            setattr(head, col, values[:n])
            setattr(rest, col, values[n:])
        return head, rest

    def drop_bad_lengths(self, len_a: int, len_b: int | None) -> None:
        """Leave out rows whose blobs have the wrong size (a corrupt record), naming them in ``rejected``."""
        total_a = sum(map(len, self.a))
        total_b = sum(map(len, self.b)) if len_b is not None else 0
        if total_a == len(self.a) * len_a and (len_b is None or total_b == len(self.b) * len_b):
            return
        keep = [
            i for i in range(len(self.names)) if len(self.a[i]) == len_a and (len_b is None or len(self.b[i]) == len_b)
        ]
        for i in set(range(len(self.names))) - set(keep):
            self.rejected[self.names[i]] = "stored factors have the wrong size for their shape"
        for col in ("names", "families", "created_at", "source", "a", "b"):
            values = getattr(self, col)
            if values:
                setattr(self, col, [values[i] for i in keep])


class TaskChunkBuilder:
    """Groups task rows by shape class (l, d, rank) into :class:`TaskChunk` s of ``chunk_size`` rows.

    Rows arrive as column blocks (``zip(*rows)`` of a database fetch): a block whose rows share one
    shape — the usual case — is appended with ``list.extend``, without Python work per row.
    """

    def __init__(self, chunk_size: int):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.chunk_size = chunk_size
        self._open: dict[tuple[int, int, int], _Rows] = {}
        self._unreadable: dict[str, str] = {}  # reported with the next chunk emitted

    def add_block(
        self,
        names: Sequence[str],
        families: Sequence[str],
        ls: Sequence[int],
        ds: Sequence[int],
        ranks: Sequence[int],
        created_at: Sequence[str],
        source: Sequence[str],
        us: Sequence[Blob],
        vs: Sequence[Blob],
    ) -> list[TaskChunk]:
        """Add a block of rows (one sequence per column); returns the chunks it completed."""
        n = len(names)
        if n == 0:
            return []
        if ls.count(ls[0]) == n and ds.count(ds[0]) == n and ranks.count(ranks[0]) == n:
            self._extend((ls[0], ds[0], ranks[0]), names, families, created_at, source, us, vs)
        else:
            groups: dict[tuple[int, int, int], list[int]] = {}
            for i, key in enumerate(zip(ls, ds, ranks)):
                groups.setdefault(key, []).append(i)
            for key, idx in groups.items():
                cols = (names, families, created_at, source, us, vs)
                self._extend(key, *([col[i] for i in idx] for col in cols))
        out = []
        for key in [k for k, rows in self._open.items() if len(rows.names) >= self.chunk_size]:
            rows = self._open.pop(key)
            while len(rows.names) >= self.chunk_size:
                head, rows = rows.split(self.chunk_size)
                out.append(self._emit(key, head))
            if rows.names:
                self._open[key] = rows
        return out

    def _extend(self, key: tuple[int, int, int], names, families, created_at, source, us, vs) -> None:
        rows = self._open.get(key)
        if rows is None:
            rows = self._open[key] = _Rows()
        rows.names.extend(names)
        rows.families.extend(families)
        rows.created_at.extend(created_at)
        rows.source.extend(source)
        rows.a.extend(us)
        rows.b.extend(vs)

    def reject(self, name: str, reason: str) -> None:
        """Record a row that could not even be read; it is reported with the next chunk emitted."""
        self._unreadable[name] = reason

    def flush(self) -> list[TaskChunk]:
        """The partly filled chunks (call once, after the last row). When rows were rejected but no
        chunk is left to report them, the last chunk is an empty one of shape (0, 0, 0)."""
        if not self._open and self._unreadable:
            self._open[(0, 0, 0)] = _Rows()
        out = [self._emit(key, rows) for key, rows in sorted(self._open.items())]
        self._open = {}
        return out

    def _emit(self, key: tuple[int, int, int], rows: _Rows) -> TaskChunk:
        l, d, r = key
        rows.rejected.update(self._unreadable)
        self._unreadable = {}
        rows.drop_bad_lengths(l * r * 4, d * r * 4)
        return TaskChunk(
            l,
            d,
            r,
            rows.names,
            rows.families,
            rows.created_at,
            rows.source,
            stack_blobs(rows.a, l, r),  # (n, l, r)
            stack_blobs(rows.b, d, r),  # (n, d, r)
            rows.rejected,
        )


def family_chunks(rows: list[tuple[str, dict, int, int, str, str, Blob]]) -> list[FamilyChunk]:
    """Families (name, fingerprint, l, d, created_at, source, shared blob) -> one chunk per shape (l, d)."""
    groups: dict[tuple[int, int], _Rows] = {}
    for name, fingerprint, l, d, created_at, source, shared in rows:
        g = groups.setdefault((l, d), _Rows())
        g.names.append(name)
        g.families.append(fingerprint)
        g.created_at.append(created_at)
        g.source.append(source)
        g.a.append(shared)
    out = []
    for (l, d), g in sorted(groups.items()):
        g.drop_bad_lengths(l * d * 4, None)
        out.append(FamilyChunk(l, d, g.names, g.families, g.created_at, g.source, stack_blobs(g.a, l, d), g.rejected))
    return out
