"""Strings that many task rows share (a task's ``source``: the training run or upload that made
it), kept once each and referred to by a small integer code per row: the prompt table holds no
string per task.

Each code counts the rows that use it; a string whose last row goes (deleted, rewritten with
another source, moved) is forgotten and its code reused, so one-off strings (one per training run)
never pile up. A writer takes codes for a chunk (:meth:`take`: each counts as a use until the
writer releases it), holds them for the rows it applies (:meth:`hold`), releases those of rows it
removes or overwrites, and at the end releases what it took: the strings of rows it did not apply
are forgotten then, and no string is forgotten while the writer still means to use its code.

Not thread-safe on its own: the prompt table calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Interned:
    def __init__(self) -> None:
        self._values: list[str | None] = []  # code -> string (None: free)
        self._codes: dict[str, int] = {}
        self._users = np.zeros(0, dtype=np.int64)  # code -> rows using it
        self._free: list[int] = []

    def __len__(self) -> int:
        return len(self._codes)

    def __iter__(self):
        return iter(self._codes)

    def value(self, code: int) -> str:
        return self._values[code]

    def take(self, values: Sequence[str]) -> np.ndarray:
        """(n,) int32 codes of ``values``, each held once until the caller releases them."""
        for v in set(values):
            if v not in self._codes:
                self._codes[v] = self._new_code(v)
        if values.count(values[0]) == len(values):
            codes = np.full(len(values), self._codes[values[0]], dtype=np.int32)
        else:
            codes = np.array([self._codes[v] for v in values], dtype=np.int32)
        self.hold(codes)
        return codes

    def hold(self, codes: np.ndarray) -> None:
        """Rows now use ``codes`` (one entry per row)."""
        self._count(codes, 1)

    def release(self, codes: np.ndarray) -> None:
        """Rows no longer use ``codes``; a string no row uses any more is forgotten."""
        for code in self._count(codes, -1):
            if self._users[code] == 0:
                del self._codes[self._values[code]]
                self._values[code] = None
                self._free.append(code)

    def _count(self, codes: np.ndarray, sign: int) -> list[int]:
        """Add ``sign`` per entry of ``codes``; returns the codes touched."""
        if len(codes) == 0:
            return []
        first = int(codes[0])
        if len(codes) == 1 or (codes == first).all():  # the usual chunk: one source
            self._users[first] += sign * len(codes)
            return [first]
        np.add.at(self._users, codes, sign)
        return np.unique(codes).tolist()

    def _new_code(self, value: str) -> int:
        if self._free:
            code = self._free.pop()
            self._values[code] = value
            return code
        self._values.append(value)
        if len(self._values) > len(self._users):
            self._users = np.concatenate([self._users, np.zeros(max(16, len(self._users)), dtype=np.int64)])
        return len(self._values) - 1
