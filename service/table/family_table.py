"""Every served family's shared prompt ``P*`` on the serving device: one small table per prompt
length (``shared``: (F_l, l, d)), so a long prompt never widens the others and the last family of a
length takes its table with it. A family keeps a small integer id for as long as it is served:
task rows refer to their family by it.

The prompt table owns one of these and calls it under its locks, after checking the sequence rule
(see :mod:`.prompt_table`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from mpt_core import Family


@dataclass(frozen=True)
class FamilyEntry:
    name: str
    fid: int
    length: int
    row: int  # in the shared table of its length
    fingerprint: dict
    created_at: str
    source: str
    seq: int


class _SharedTable:
    """The shared prompts of every family of one prompt length: (capacity, l, d), free rows reused."""

    def __init__(self, l: int, d: int, device: torch.device):
        self.shared = torch.zeros(4, l, d, device=device)
        self.free: list[int] = []
        self.used = 0  # rows handed out so far (live + free)

    def take(self) -> int:
        if self.free:
            return self.free.pop()
        if self.used == self.shared.shape[0]:
            grown = self.shared.new_zeros(2 * self.used, *self.shared.shape[1:])
            grown[: self.used] = self.shared
            self.shared = grown
        self.used += 1
        return self.used - 1

    def live(self) -> int:
        return self.used - len(self.free)


class FamilyTable:
    def __init__(self, d: int, device: torch.device):
        self.d, self.device = d, device
        self.entries: dict[str, FamilyEntry] = {}
        self.by_id: dict[int, FamilyEntry] = {}
        self.gone: dict[str, int] = {}  # name -> sequence of its deletion (until the floor passes it)
        self._free_ids: list[int] = []
        self._shared: dict[int, _SharedTable] = {}  # l -> shared prompts of that length

    def known_seq(self, name: str, floor: int) -> int:
        """The sequence a new version of ``name`` must be above."""
        entry = self.entries.get(name)
        return entry.seq if entry is not None else self.gone.get(name, floor)

    def shared(self, length: int) -> torch.Tensor:
        """(F_l, l, d): the shared prompts of length ``length``, by row."""
        return self._shared[length].shared

    def put(self, family: Family, seq: int) -> FamilyEntry:
        """Write ``family`` (new, or replacing a served one: same row when its length is the same)."""
        old = self.entries.get(family.name)
        if old is not None and old.length == family.length:
            row = old.row
        else:
            if old is not None:
                self._free(old.length, old.row)
            table = self._shared.get(family.length)
            if table is None:
                table = self._shared[family.length] = _SharedTable(family.length, self.d, self.device)
            row = table.take()
        self._shared[family.length].shared[row] = family.shared.to(self.device)
        if old is not None:
            fid = old.fid
        elif self._free_ids:
            fid = self._free_ids.pop()
        else:
            fid = len(self.by_id)
        entry = FamilyEntry(
            family.name, fid, family.length, row, family.fingerprint, family.created_at, family.source, seq
        )
        self.entries[family.name] = self.by_id[fid] = entry
        self.gone.pop(family.name, None)
        return entry

    def remove(self, name: str, seq: int) -> None:
        entry = self.entries.pop(name)
        del self.by_id[entry.fid]
        self._free_ids.append(entry.fid)
        self._free(entry.length, entry.row)
        self.gone[name] = seq

    def reset_seqs(self) -> None:
        """Before a full reload: every family may be rewritten."""
        for name, entry in list(self.entries.items()):
            self.entries[name] = self.by_id[entry.fid] = dataclasses.replace(entry, seq=-1)
        self.gone.clear()

    def nbytes(self) -> int:
        return sum(t.shared.numel() * t.shared.element_size() for t in self._shared.values())

    def has_length(self, length: int) -> bool:
        return length in self._shared

    def _free(self, length: int, row: int) -> None:
        table = self._shared[length]
        table.free.append(row)
        if table.live() == 0:
            del self._shared[length]
