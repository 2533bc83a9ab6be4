"""What travels through the micro-batcher: one :class:`Row` per input of a request, one
:class:`RowResult` back. Plain data (no torch, no transformers), so the batcher and the metrics
depend on nothing heavier than this."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidates:
    """The answers a request asks to score, as texts and as token ids (each ending in EOS)."""

    texts: list[str]
    ids: list[list[int]]


@dataclass
class Row:
    """One input of one request, as queued for a batch."""

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
