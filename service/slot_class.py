"""One slot class of the prompt table: every resident task of one prompt length ``l`` and rank ``r``.

    u:        (cap, l, r) float32   on the serving device
    v:        (cap, d, r) float32
    seq:      (cap,) int64          store sequence of the version each row holds     (host, numpy)
    created:  (cap,) int64          created_at, encoded (see created_at.py)
    family:   (cap,) int32          family id
    source:   (cap,) int32          interned source id
    names:    [cap] str             row -> task name

A task therefore costs its factors, ``(l + d)·r·4`` bytes, plus 24 bytes here and 8 for its
name's slot: no Python object per task. Rows are dense: rows ``[0, size)`` are live; removing a
row moves the last row into it (the caller re-points that task's name), so capacity can shrink
(to half, when under a quarter full) and memory comes back when tasks go. Capacity doubles when
full; ``reserve`` pre-sizes it for a bulk load. Capacity never touched costs no resident memory
on the CPU (``torch.empty`` / ``np.empty`` of that size are untouched pages).

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
        self.u = torch.empty(capacity, self.l, self.r, device=self.device)  # (cap, l, r)
        self.v = torch.empty(capacity, self.d, self.r, device=self.device)  # (cap, d, r)
        self.seq = np.empty(capacity, np.int64)
        self.created = np.empty(capacity, np.int64)
        self.family = np.empty(capacity, np.int32)
        self.source = np.empty(capacity, np.int32)
        self.names: list[str | None] = [None] * capacity

    @property
    def capacity(self) -> int:
        return self.u.shape[0]

    def nbytes(self) -> int:
        """Bytes of the factor tensors (the capacity, as allocated)."""
        return (self.u.numel() + self.v.numel()) * self.u.element_size()

    def live_bytes(self) -> int:
        return self.size * (self.l + self.d) * self.r * 4

    # ---- capacity ----------------------------------------------------------------------------------
    def reserve(self, extra: int) -> None:
        """Room for ``extra`` more rows; grows to max(2 x capacity, what is needed)."""
        need = self.size + extra
        if need > self.capacity:
            self._resize(max(need, 2 * self.capacity))

    def _resize(self, capacity: int) -> None:
        old = (self.u, self.v, self.seq, self.created, self.family, self.source, self.names)
        n = self.size
        self._allocate(capacity)
        self.u[:n] = old[0][:n]
        self.v[:n] = old[1][:n]
        for new, prev in zip((self.seq, self.created, self.family, self.source), old[2:6]):
            new[:n] = prev[:n]
        self.names[:n] = old[6][:n]

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
        self.names[first:end] = names
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
        self.names[last] = None
        self.size = last
        if self.capacity > MIN_CAPACITY and self.size < self.capacity // 4:
            self._resize(max(MIN_CAPACITY, self.capacity // 2))
        return moved
