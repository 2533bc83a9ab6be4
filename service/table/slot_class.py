"""One slot class of the prompt table: every resident task of one prompt length ``l`` and rank ``r``.

    u:        (cap, l, r) float32   on the serving device
    v:        (cap, d, r) float32
    seq:      (cap,) int64          store sequence of the version each row holds     (host, numpy)
    created:  (cap,) int64          created_at, encoded (see created_at.py)
    family:   (cap,) int32          family id
    source:   (cap,) int32          interned source id
    names:    [size] str            row -> task name

A task therefore costs its factors, ``(l + d)·r·4`` bytes, plus 24 bytes here and 8 for its
name's slot: no Python object per task. Rows are dense: rows ``[0, size)`` are live; removing a
row moves the last row into it (the caller re-points that task's name), so capacity can shrink
(to half, when under a quarter full) and memory comes back when tasks go. Capacity doubles when
full; the table grows a class with :meth:`grown` + :meth:`adopt`, copying outside its read lock.
On a GPU, capacity is device memory whether used or not: a bulk load grows each class for the rows
it receives (never more than the load can still deliver) and trims it afterwards (:meth:`trim`).

Not thread-safe on its own: the prompt table calls it under its lock.
"""

from __future__ import annotations

import numpy as np
import torch

MIN_CAPACITY = 16


class SlotClass:
    def __init__(self, l: int, d: int, r: int, device: torch.device, capacity: int = MIN_CAPACITY):
        self.l, self.d, self.r, self.device = l, d, r, device
        self.size = 0
        self._allocate(max(MIN_CAPACITY, capacity))

    def _allocate(self, capacity: int) -> None:
        self.u, self.v, self.seq, self.created, self.family, self.source = self._arrays(capacity)
        self.names: list[str] = []  # dense like the rows: names[row]

    def _arrays(self, capacity: int) -> tuple:
        return (
            torch.empty(capacity, self.l, self.r, device=self.device),  # u (cap, l, r)
            torch.empty(capacity, self.d, self.r, device=self.device),  # v (cap, d, r)
            np.empty(capacity, np.int64),  # seq
            np.empty(capacity, np.int64),  # created
            np.empty(capacity, np.int32),  # family
            np.empty(capacity, np.int32),  # source
        )

    @property
    def capacity(self) -> int:
        return self.u.shape[0]

    def nbytes(self) -> int:
        """Bytes of the factor tensors (the capacity, as allocated)."""
        return (self.u.numel() + self.v.numel()) * self.u.element_size()

    # ---- capacity ----------------------------------------------------------------------------------
    def reserve(self, extra: int) -> None:
        """Room for ``extra`` more rows; grows to max(2 x capacity, what is needed)."""
        need = self.size + extra
        if need > self.capacity:
            self._resize(max(need, 2 * self.capacity))

    def _resize(self, capacity: int) -> None:
        self.adopt(self._copy(capacity))

    def grown(self, extra: int, limit: int | None = None) -> tuple | None:
        """When ``extra`` more rows do not fit: new arrays of max(2 x capacity, what is needed)
        holding the live rows, for :meth:`adopt` (``limit``: at most that many rows, unless more
        are needed: a bulk load knows how many rows can still come). Reads only, so the caller may
        run it while others read the class (but no one writes it); None when no growth is needed."""
        need = self.size + extra
        if need <= self.capacity:
            return None
        capacity = 2 * self.capacity if limit is None else min(2 * self.capacity, limit)
        return self._copy(max(need, capacity))

    def trim(self) -> None:
        """Give back capacity over the live rows plus 1/8 (at least ``MIN_CAPACITY``): after a bulk
        load, which grows classes by doubling, what stays allocated is what is used plus bounded room."""
        keep = max(MIN_CAPACITY, self.size + self.size // 8)
        if self.capacity > keep:
            self._resize(keep)

    def _copy(self, capacity: int) -> tuple:
        arrays, n = self._arrays(capacity), self.size
        for new, old in zip(arrays, (self.u, self.v, self.seq, self.created, self.family, self.source)):
            new[:n] = old[:n]
        return arrays

    def adopt(self, arrays: tuple) -> None:
        self.u, self.v, self.seq, self.created, self.family, self.source = arrays

    # ---- rows --------------------------------------------------------------------------------------
    def append(
        self,
        u: torch.Tensor,  # (k, l, r)
        v: torch.Tensor,  # (k, d, r)
        seq: np.ndarray,
        created: np.ndarray,
        family: np.ndarray,
        source: np.ndarray,
        names: list[str],
    ) -> int:
        """Add ``k`` rows at the end; returns the first row's index."""
        k = len(names)
        self.reserve(k)
        first, end = self.size, self.size + k
        self.u[first:end] = u.to(self.device)
        self.v[first:end] = v.to(self.device)
        self.seq[first:end] = seq
        self.created[first:end] = created
        self.family[first:end] = family
        self.source[first:end] = source
        self.names.extend(names)
        self.size = end
        return first

    def write(
        self,
        rows: list[int],
        u: torch.Tensor,  # (k, l, r)
        v: torch.Tensor,  # (k, d, r)
        seq: np.ndarray,
        created: np.ndarray,
        family: np.ndarray,
        source: np.ndarray,
    ) -> None:
        """Replace live rows in place (a task rewritten with the same shape)."""
        index = torch.tensor(rows, device=self.device)
        self.u.index_copy_(0, index, u.to(self.device))
        self.v.index_copy_(0, index, v.to(self.device))
        self.seq[rows] = seq
        self.created[rows] = created
        self.family[rows] = family
        self.source[rows] = source

    def remove(self, row: int) -> str | None:
        """Free ``row`` by moving the last row into it; returns the moved task's name (now at
        ``row``), or None when ``row`` was the last. Shrinks when under a quarter full."""
        last = self.size - 1
        moved = None
        if row != last:
            self.u[row] = self.u[last]
            self.v[row] = self.v[last]
            for a in (self.seq, self.created, self.family, self.source):
                a[row] = a[last]
            moved = self.names[row] = self.names[last]
        self.names.pop()
        self.size = last
        if self.capacity > MIN_CAPACITY and self.size < self.capacity // 4:
            self._resize(max(MIN_CAPACITY, self.capacity // 2))
        return moved
