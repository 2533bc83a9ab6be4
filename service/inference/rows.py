"""What travels through the micro-batcher: one :class:`Row` per input of a request (or per chunk
of its candidates), one :class:`RowResult` back. Plain data (no torch, no transformers), so the
batcher and the metrics depend on nothing heavier than this."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidates:
    """The answers a request asks to score, as texts and as token ids (each ending in EOS)."""

    texts: list[str]
    ids: list[list[int]]
    longest: int = field(init=False)  # tokens of the longest candidate: what every candidate of a batch is padded to

    def __post_init__(self) -> None:  # computed once (a cached_property takes a lock per read on Python 3.11)
        object.__setattr__(self, "longest", max(map(len, self.ids), default=0))

    def chunk(self, start: int, stop: int) -> Candidates:
        return Candidates(self.texts[start:stop], self.ids[start:stop])


@dataclass
class Row:
    """One input of one request (or one chunk of its candidates), as queued for a batch."""

    task: str
    input_ids: list[int]
    max_new_tokens: int = 0  # greedy generation when candidates is None
    candidates: Candidates | None = None  # scoring mode; shared by the rows of one request
    enqueued_at: float = field(default_factory=time.perf_counter)


@dataclass
class RowResult:
    """A row's final answer: the generated text, or the best candidate and every candidate's
    log-likelihood; or the error that kept it from being computed."""

    output: str | None = None
    scores: list[float] | None = None
    error: Exception | None = None


class BatchCost:
    """The padded tokens a batch costs, kept as rows are added, O(1) per row: the engine pads the
    inputs of a batch to the longest, the candidates of its scoring rows to the longest candidate,
    and decodes its generating rows for the most new tokens any of them asks for.

        cost = rows x longest input + candidates x longest candidate + generating rows x most new tokens
    """

    __slots__ = ("cands", "gen", "longest_cand", "longest_input", "most_new", "rows")

    def __init__(self) -> None:
        self.rows = self.longest_input = self.cands = self.longest_cand = self.gen = self.most_new = 0

    @staticmethod
    def of(row: Row) -> int:
        """The cost of ``row`` alone."""
        return BatchCost().with_row(row)

    def with_row(self, row: Row) -> int:
        """The cost of the batch if ``row`` joined it."""
        rows, longest_input = self.rows + 1, max(self.longest_input, len(row.input_ids))
        cands, longest_cand, gen, most_new = self.cands, self.longest_cand, self.gen, self.most_new
        if row.candidates is None:
            gen, most_new = gen + 1, max(most_new, row.max_new_tokens)
        else:
            cands, longest_cand = cands + len(row.candidates.ids), max(longest_cand, row.candidates.longest)
        return rows * longest_input + cands * longest_cand + gen * most_new

    def add(self, row: Row) -> None:
        self.rows, self.longest_input = self.rows + 1, max(self.longest_input, len(row.input_ids))
        if row.candidates is None:
            self.gen, self.most_new = self.gen + 1, max(self.most_new, row.max_new_tokens)
        else:
            self.cands += len(row.candidates.ids)
            self.longest_cand = max(self.longest_cand, row.candidates.longest)
