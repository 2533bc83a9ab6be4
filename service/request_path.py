"""The request path of ``/predict``, one named stage each (after LitServe's
``decode_request -> predict -> encode_response`` loop):

    decode_request   validate (name, task, limits) and tokenize -> one Row per input     event loop
    batch            queue the rows in the micro-batcher and await them with the deadline;
                     the engine computes them there (compose, encode, decode or score,
                     detokenize, pick the best candidate)                                batcher thread
    encode_response  the final answers -> PredictResponse; a failed row -> its error     event loop
"""

from __future__ import annotations

import asyncio

from prompts_store import NotFound, validate_name

from .batcher import Draining, MicroBatcher, QueueFull
from .engine import Engine
from .errors import ApiError
from .metrics import Metrics
from .prompt_table import PromptTable
from .rows import Candidates, Row, RowResult
from .schemas import PredictResponse
from .settings import Settings


class RequestPath:
    def __init__(self, settings: Settings, engine: Engine, table: PromptTable, batcher: MicroBatcher, metrics: Metrics):
        self.settings, self.engine, self.table, self.batcher, self.metrics = settings, engine, table, batcher, metrics

    async def predict(
        self, task: str, inputs: list[str], max_new_tokens: int | None, candidates: list[str] | None
    ) -> PredictResponse:
        rows = self.decode_request(task, inputs, max_new_tokens, candidates)
        results = await self.batch(rows)
        return self.encode_response(task, results)

    def decode_request(
        self, task: str, inputs: list[str], max_new_tokens: int | None, candidates: list[str] | None
    ) -> list[Row]:
        """The request's rows, after every check that needs no model: 422 / 404 / 413."""
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
        ids = self.engine.tokenize(inputs)
        for i, x in enumerate(ids):
            if len(x) > s.max_input_tokens:
                raise ApiError(
                    413, "input_too_long", f"input {i} has {len(x)} tokens; the limit is {s.max_input_tokens}"
                )
        cands = None
        if candidates is not None:
            if not candidates or len(candidates) > s.max_candidates:
                raise ApiError(413 if candidates else 422, "bad_candidates", f"give 1 to {s.max_candidates} candidates")
            cands = Candidates(candidates, self.engine.tokenize(candidates))
            if max(len(c) for c in cands.ids) > s.max_input_tokens:
                raise ApiError(413, "candidate_too_long", f"a candidate is over {s.max_input_tokens} tokens")
        return [Row(task, x, new_tokens, cands) for x in ids]

    async def batch(self, rows: list[Row]) -> list[RowResult]:
        """Queue the rows (503 when full or draining) and await their results (504 after the deadline)."""
        try:
            pending = self.batcher.submit(rows)
        except QueueFull:
            raise ApiError(
                503, "overloaded", "the request queue is full; retry shortly", {"Retry-After": "1"}
            ) from None
        except Draining:
            raise ApiError(503, "not_ready", "not ready: the server is shutting down", {"Retry-After": "1"}) from None
        self.metrics.queued_rows.set(self.batcher.queued_rows())
        timeout = self.settings.request_timeout_s
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        except asyncio.TimeoutError:
            pending.cancel()  # its rows still queued are dropped, not computed
            raise ApiError(504, "deadline_exceeded", f"no answer within {timeout:g}s") from None

    @staticmethod
    def encode_response(task: str, results: list[RowResult]) -> PredictResponse:
        for r in results:
            if r.error is not None:
                raise r.error if isinstance(r.error, NotFound) else ApiError(500, "inference_failed", str(r.error))
        scores = None if results[0].scores is None else [r.scores for r in results]
        return PredictResponse(task=task, outputs=[r.output for r in results], scores=scores)
