"""The request path of ``/predict``, one named stage each (after LitServe's
``decode_request -> predict -> encode_response`` loop):

    decode_request   check (name, task, counts, characters, work budget; no model), then
                     tokenize (candidates seen before from a cache; the rest on the tokenize
                     stage's thread, many requests per call, or in a thread pool when big)
                     and plan the rows: one per input, or per chunk of an input's
                     candidates when they would not fit one batch                           event loop
    batch            queue the rows in the micro-batcher and await them with the deadline;
                     the engine computes them there (compose, encode, decode or score,
                     detokenize, pick the best candidate)                                   batcher thread
    encode_response  the final answers -> PredictResponse, merging the scores of a split
                     input; a failed row -> its error                                       event loop
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mpt_core import validate_name
from prompts_store import NotFound

from ..http.errors import ApiError
from ..http.schemas import PredictResponse
from ..runtime.metrics import Metrics
from ..settings import Settings
from ..table.prompt_table import PromptTable
from .batcher import Draining, MicroBatcher, Pending, QueueFull, TaskQueueFull
from .engine import Engine
from .rows import Candidates, Row, RowResult
from .tokenize_stage import TokenizeStage

POOL_TOKENIZE_CHARS = 4096  # a request of more characters tokenizes in the thread pool, alone
CACHED_CANDIDATES = 16384  # candidate texts whose token ids are kept (the oldest go first)
CACHED_CANDIDATE_CHARS = 256  # longer candidates are not kept


def longest_token_chars(tokenizer) -> int:
    """Characters of the longest vocabulary entry (added tokens included): no token covers more
    text than that, so a text of ``c`` characters needs at least ``c / this`` tokens (unless the
    tokenizer drops characters, as runs of whitespace)."""
    return max((len(t) for t in tokenizer.get_vocab()), default=1)


class DeadlineExceeded(Exception):
    pass


def _expire(pending: Pending) -> None:
    """The request's deadline passed: its rows still queued are dropped, not computed; it answers 504."""
    if not pending.future.done():
        pending.cancel()
        pending.future.set_exception(DeadlineExceeded())


@dataclass
class Plan:
    """The rows of one request and which input each answers (several rows when its candidates were split)."""

    rows: list[Row]
    owner: list[int]
    candidates: list[str] | None


class RequestPath:
    def __init__(self, settings: Settings, engine: Engine, table: PromptTable, batcher: MicroBatcher, metrics: Metrics):
        self.settings, self.engine, self.table, self.batcher, self.metrics = settings, engine, table, batcher, metrics
        self.max_input_chars = settings.max_input_chars or settings.max_input_tokens * longest_token_chars(
            engine.tokenizer
        )
        # Rust tokenizers release the GIL: two threads let a small request tokenize while a big one
        # does, on 2 cores; more would only contend with the model's threads.
        self._pool = ThreadPoolExecutor(settings.tokenizer_threads, thread_name_prefix="mpt-tokenize")
        self._stage = TokenizeStage(engine.tokenize, max_chars=POOL_TOKENIZE_CHARS * 16)
        metrics.queued_rows.set_function(batcher.queued_rows)  # read when scraped, not set per request
        self._candidate_ids: dict[str, list[int]] = {}  # event loop only; the lists are shared, never mutated

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._stage.stop()

    async def predict(
        self, task: str, inputs: list[str], max_new_tokens: int | None, candidates: list[str] | None
    ) -> PredictResponse:
        deadline = time.perf_counter() + self.settings.request_timeout_s
        plan = await self.decode_request(task, inputs, max_new_tokens, candidates)
        results = await self.batch(task, plan.rows, deadline)
        return self.encode_response(task, plan, results)

    # ---- decode_request -----------------------------------------------------------------------
    async def decode_request(
        self, task: str, inputs: list[str], max_new_tokens: int | None, candidates: list[str] | None
    ) -> Plan:
        """The request's rows, after every check: 422 / 404 / 413."""
        new_tokens = self.check(task, inputs, max_new_tokens, candidates)
        ids, cand_ids = await self.tokenize(inputs, candidates or ())
        return self.plan(task, ids, new_tokens, candidates, cand_ids)

    def check(self, task: str, inputs: list[str], max_new_tokens: int | None, candidates: list[str] | None) -> int:
        """Every check that needs no tokenizer; returns the new tokens to generate."""
        s = self.settings
        validate_name(task, "task")
        self.table.task(task)  # 404 before any work
        if not inputs:
            raise ApiError(422, "invalid_request", "inputs must hold at least one string")
        if len(inputs) > s.max_inputs:
            raise ApiError(413, "too_many_inputs", f"{len(inputs)} inputs; at most {s.max_inputs} per request")
        new_tokens = s.default_new_tokens if max_new_tokens is None else max_new_tokens
        if new_tokens > s.max_new_tokens:
            raise ApiError(
                413, "too_many_new_tokens", f"max_new_tokens={new_tokens} exceeds the limit {s.max_new_tokens}"
            )
        if candidates is not None and (not candidates or len(candidates) > s.max_candidates):
            raise ApiError(413 if candidates else 422, "bad_candidates", f"give 1 to {s.max_candidates} candidates")
        if candidates is None and len(inputs) * new_tokens > s.max_generate_tokens:
            raise ApiError(
                413,
                "over_work_budget",
                f"{len(inputs)} inputs x max_new_tokens={new_tokens} = {len(inputs) * new_tokens} tokens to generate; "
                f"at most {s.max_generate_tokens} per request (send fewer inputs per request)",
            )
        self.check_texts("inputs", inputs)
        self.check_texts("candidates", candidates or ())
        return new_tokens

    def check_texts(self, field: str, texts: Sequence[str]) -> None:
        """413 for a text too long to fit ``max_input_tokens`` (by its length alone, before any
        tokenizing), 422 for one that is not Unicode text (a lone UTF-16 surrogate from JSON's ``\\ud800``)."""
        limit = self.max_input_chars
        for i, text in enumerate(texts):
            if len(text) > limit:
                raise ApiError(
                    413,
                    "input_too_long",
                    f"{field}[{i}] has {len(text)} characters; at most {limit} (it could not fit "
                    f"{self.settings.max_input_tokens} tokens)",
                )
        for i, text in enumerate(texts):
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as e:
                    raise ApiError(
                        422,
                        "invalid_text",
                        f"{field}[{i}]: {text[e.start]!r} at character {e.start} is a lone UTF-16 surrogate, not text",
                    ) from None

    async def tokenize(
        self, inputs: Sequence[str], candidates: Sequence[str]
    ) -> tuple[list[list[int]], list[list[int]]]:
        """Token ids of the inputs and of the candidates. Candidates (label sets, asked again and
        again) come from a bounded cache when seen before; what is left is tokenized off the event
        loop: on the tokenize stage's thread with the other requests queued meanwhile, or in the
        thread pool when big (so small requests do not wait behind it)."""
        cache = self._candidate_ids
        cand = [cache.get(c) for c in candidates]
        missing = [c for c, x in zip(candidates, cand) if x is None]
        texts = [*inputs, *missing]
        if sum(len(t) for t in texts) <= POOL_TOKENIZE_CHARS:
            ids = await self._stage.tokenize(texts)
        else:
            ids = await asyncio.get_running_loop().run_in_executor(self._pool, self.engine.tokenize, texts)
        if missing:
            fresh = iter(ids[len(inputs) :])
            cand = [x if x is not None else next(fresh) for x in cand]
            for text, x in zip(missing, ids[len(inputs) :]):
                if len(text) <= CACHED_CANDIDATE_CHARS:
                    if len(cache) >= CACHED_CANDIDATES:
                        del cache[next(iter(cache))]  # the oldest entry
                    cache[text] = x
        return ids[: len(inputs)], cand  # type: ignore[return-value]

    def plan(
        self,
        task: str,
        ids: list[list[int]],
        new_tokens: int,
        candidates: list[str] | None,
        cand_ids: list[list[int]],
    ) -> Plan:
        """Token limits and the scoring budget (413), then the rows: an input whose candidates
        would not fit one batch (``max_batch_tokens``) is split into rows of fewer candidates, so a
        big request interleaves with others instead of holding whole batches."""
        s = self.settings
        for i, x in enumerate(ids):
            if len(x) > s.max_input_tokens:
                raise ApiError(
                    413, "input_too_long", f"input {i} has {len(x)} tokens; the limit is {s.max_input_tokens}"
                )
        if candidates is None:
            return Plan([Row(task, x, new_tokens) for x in ids], list(range(len(ids))), None)
        cands = Candidates(list(candidates), cand_ids)
        if cands.longest > s.max_input_tokens:
            raise ApiError(413, "candidate_too_long", f"a candidate is over {s.max_input_tokens} tokens")
        work = len(ids) * len(cands.ids) * cands.longest
        if work > s.max_score_tokens:
            raise ApiError(
                413,
                "over_work_budget",
                f"{len(ids)} inputs x {len(cands.ids)} candidates x {cands.longest} tokens (the longest candidate) "
                f"= {work} tokens to score; at most {s.max_score_tokens} per request "
                f"(send fewer inputs per request, or fewer or shorter candidates)",
            )
        rows, owner = [], []
        for i, x in enumerate(ids):
            per_row = max(1, (s.max_batch_tokens - len(x)) // cands.longest)
            if per_row >= len(cands.ids):
                rows.append(Row(task, x, new_tokens, cands))
                owner.append(i)
                continue
            for start in range(0, len(cands.ids), per_row):
                rows.append(Row(task, x, new_tokens, cands.chunk(start, start + per_row)))
                owner.append(i)
        return Plan(rows, owner, list(candidates))

    # ---- batch --------------------------------------------------------------------------------
    async def batch(self, task: str, rows: list[Row], deadline: float) -> list[RowResult]:
        """Queue the rows (429 over the task's share, 503 when full or draining) and await their
        results (504 after the deadline; rows not yet started are then dropped, never computed)."""
        try:
            pending = self.batcher.submit(rows, deadline=deadline, key=task)
        except TaskQueueFull:
            raise ApiError(
                429,
                "task_queue_full",
                f"task {task!r} has {self.settings.max_task_queue} rows or more waiting; retry shortly",
                {"Retry-After": "1"},
            ) from None
        except QueueFull:
            raise ApiError(
                503, "overloaded", "the request queue is full; retry shortly", {"Retry-After": "1"}
            ) from None
        except Draining:
            raise ApiError(503, "not_ready", "not ready: the server is shutting down", {"Retry-After": "1"}) from None
        # one timer per request (cheaper than wait_for + shield, which wrap the future in two more)
        timer = asyncio.get_running_loop().call_later(max(0.0, deadline - time.perf_counter()), _expire, pending)
        try:
            return await pending.future
        except DeadlineExceeded:
            timeout = self.settings.request_timeout_s
            raise ApiError(504, "deadline_exceeded", f"no answer within {timeout:g}s") from None
        except Draining:  # the batcher stopped (the drain timed out) before the rows ran
            raise ApiError(503, "not_ready", "not ready: the server is shutting down", {"Retry-After": "1"}) from None
        except asyncio.CancelledError:
            pending.cancel()
            raise
        finally:
            timer.cancel()

    # ---- encode_response ----------------------------------------------------------------------
    @staticmethod
    def encode_response(task: str, plan: Plan, results: list[RowResult]) -> PredictResponse:
        for r in results:
            if r.error is not None:
                raise r.error if isinstance(r.error, NotFound) else ApiError(500, "inference_failed", str(r.error))
        # built without validating again (the fields are what the engine gave: str, float)
        if plan.candidates is None:
            return PredictResponse.model_construct(task=task, outputs=[r.output for r in results], scores=None)
        scores: list[list[float]] = [[] for _ in range(plan.owner[-1] + 1)]
        for i, r in zip(plan.owner, results):  # an input's rows are its candidates' chunks, in order
            scores[i].extend(r.scores)
        best = [max(range(len(s)), key=s.__getitem__) for s in scores]  # the first best, as the engine picks
        return PredictResponse.model_construct(task=task, outputs=[plan.candidates[b] for b in best], scores=scores)
