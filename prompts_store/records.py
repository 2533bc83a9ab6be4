"""The plain records a store hands out: a change of the feed, a task's or family's metadata without
its tensors, chunks for bulk loading, and the read counter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from mpt_core.artifacts import Family, Task


class Change(NamedTuple):
    """One entry of the change feed: the latest state of ``kind``/``name`` as of sequence ``seq``.

    ``value`` is the Family or Task, or None when the name is deleted. ``error`` is set (and
    ``value`` is None) when the stored record exists but cannot be decoded: serve it as absent.
    ``committed_at`` is when the change was committed (Unix seconds, the writer's clock), for
    measuring how long readers take to apply it; None where a backend does not record it.
    """

    seq: int
    kind: str  # "family" | "task"
    name: str
    value: Family | Task | None
    error: str | None = None
    committed_at: float | None = None


@dataclass(frozen=True)
class TaskInfo:
    """A task's metadata, read without its factors."""

    name: str
    family: str
    rank: int
    l: int
    d: int
    created_at: str
    source: str
    seq: int | None  # the sequence of its last write (None where a backend does not track it per record)

    @property
    def nbytes(self) -> int:
        """Bytes of its factors u (l, r) and v (d, r) as float32."""
        return (self.l + self.d) * self.rank * 4


@dataclass(frozen=True)
class FamilyInfo:
    """A family's metadata, read without its shared prompt."""

    name: str
    l: int
    d: int
    fingerprint: dict
    created_at: str
    source: str
    seq: int | None

    @property
    def nbytes(self) -> int:
        return self.l * self.d * 4


@dataclass
class TaskChunk:
    """Up to a chunk's worth of tasks of one shape class (l, d, rank), as stacked tensors.

    Row ``i`` is task ``names[i]``. Rows that failed the load checks are left out and listed in
    ``rejected`` (name -> reason).
    """

    l: int
    d: int
    rank: int
    names: list[str]
    families: list[str]
    created_at: list[str]
    source: list[str]
    u: torch.Tensor  # (n, l, r) float32
    v: torch.Tensor  # (n, d, r) float32
    rejected: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    def select(self, keep: torch.Tensor) -> TaskChunk:
        """The rows where ``keep`` (n,) bool is true."""
        idx = keep.nonzero().flatten().tolist()
        return TaskChunk(
            self.l,
            self.d,
            self.rank,
            [self.names[i] for i in idx],
            [self.families[i] for i in idx],
            [self.created_at[i] for i in idx],
            [self.source[i] for i in idx],
            self.u[keep].contiguous(),
            self.v[keep].contiguous(),
            dict(self.rejected),
        )

    def rows(self, start: int, stop: int) -> TaskChunk:
        """Rows ``start:stop`` (views of the tensors)."""
        return TaskChunk(
            self.l,
            self.d,
            self.rank,
            self.names[start:stop],
            self.families[start:stop],
            self.created_at[start:stop],
            self.source[start:stop],
            self.u[start:stop],
            self.v[start:stop],
        )

    def task(self, i: int) -> Task:
        """Row ``i`` as a Task (validates it again; for copies and tests, not for bulk loading)."""
        return Task(self.names[i], self.families[i], self.u[i], self.v[i], self.created_at[i], self.source[i])


@dataclass
class FamilyChunk:
    """Families of one shape (l, d), stacked."""

    l: int
    d: int
    names: list[str]
    fingerprints: list[dict]
    created_at: list[str]
    source: list[str]
    shared: torch.Tensor  # (n, l, d) float32
    rejected: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    def select(self, keep: torch.Tensor) -> FamilyChunk:
        """The rows where ``keep`` (n,) bool is true."""
        idx = keep.nonzero().flatten().tolist()
        return FamilyChunk(
            self.l,
            self.d,
            [self.names[i] for i in idx],
            [self.fingerprints[i] for i in idx],
            [self.created_at[i] for i in idx],
            [self.source[i] for i in idx],
            self.shared[keep].contiguous(),
            dict(self.rejected),
        )

    def family(self, i: int) -> Family:
        return Family(self.names[i], self.shared[i], self.fingerprints[i], self.created_at[i], self.source[i])


@dataclass
class ReadCounter:
    """Records a store object has materialised (tensors read), for proving that work is O(changes).

    ``tasks`` counts every task read: ``get_task``, a change's value, a row of a bulk chunk.
    """

    tasks: int = 0
    families: int = 0
