"""The service's state and its operations: start-up (load, sync, warm up), the prediction path
(validate -> tokenize -> enqueue -> await with a deadline), mutations (persist, then publish),
and draining. Routes are thin wrappers around these methods."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from prompts_store import Conflict, DirectoryStore, Family, NotFound, Task, check_compatible, validate_name
from prompts_store.backbone import load_backbone

from .batcher import Draining, MicroBatcher, QueueFull
from .engine import Engine
from .errors import ApiError
from .metrics import Metrics
from .prompt_table import PromptTable
from .rows import Candidates, Row
from .settings import Settings
from .store_sync import StoreSync

log = logging.getLogger("mpt.service")


class ServiceState:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.metrics = Metrics()
        self.phase = "starting"  # starting -> ready -> draining; or failed
        self.failure: str | None = None
        self.engine: Engine | None = None
        self.table: PromptTable | None = None  # built once, handed to the engine and the store sync
        self.fingerprint: dict | None = None
        self.store: DirectoryStore | None = None
        self.sync: StoreSync | None = None
        self.batcher: MicroBatcher | None = None
        self.on_fatal: Callable[[], None] | None = None
        self._background: list[asyncio.Task] = []

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Begin loading in the background: /health/live answers at once, /health/ready once loaded."""
        self._background.append(asyncio.create_task(self._load()))

    async def _load(self) -> None:
        s = self.settings
        try:
            t0 = time.perf_counter()
            backbone = await asyncio.to_thread(load_backbone, s.model, s.device, s.dtype, s.attn_implementation)
            self.table = PromptTable(backbone.d_model, backbone.device)
            self.engine, self.fingerprint = Engine(backbone, self.table), backbone.fingerprint
            self.store = await asyncio.to_thread(DirectoryStore, s.store)
            self.sync = StoreSync(self.store, self.table, self.fingerprint, self.metrics)
            counts = await asyncio.to_thread(self.sync.sync)
            warm = await asyncio.to_thread(self.engine.warm_up)
            self.batcher = MicroBatcher(
                self.engine.run, s.max_batch, s.max_wait_ms / 1000, s.max_queue, self.metrics.observe_batch
            )
            self.batcher.start()
            self._background.append(asyncio.create_task(self.sync.poll_forever(s.store_poll_s)))
            self.refresh_gauges()
            if self.phase == "starting":
                self.phase = "ready"
            log.info(
                "ready in %.1fs: %d families, %d tasks from %s (warm-up %.2fs)",
                time.perf_counter() - t0,
                counts["family"],
                counts["task"],
                s.store,
                warm,
            )
        except Exception as e:
            self.phase, self.failure = "failed", f"{type(e).__name__}: {e}"
            log.error("start-up failed: %s", self.failure)
            if self.on_fatal is not None:
                self.on_fatal()

    def begin_drain(self) -> None:
        """SIGTERM: readiness goes 503 and new predictions are refused; queued ones still run."""
        if self.phase in ("starting", "ready"):
            self.phase = "draining"
            log.info("draining: refusing new requests, finishing in-flight ones")
        if self.batcher is not None:
            self.batcher.drain()

    async def stop(self) -> None:
        self.begin_drain()
        for task in self._background:
            task.cancel()
        if self.batcher is not None:
            await asyncio.to_thread(self.batcher.stop, self.settings.drain_timeout_s)

    @property
    def ready(self) -> bool:
        return self.phase == "ready"

    def require_ready(self) -> Engine:
        if self.phase == "ready" and self.engine is not None:
            return self.engine
        reason = {"starting": "the model is still loading", "draining": "the server is shutting down"}.get(
            self.phase, f"start-up failed: {self.failure}"
        )
        raise ApiError(503, "not_ready", f"not ready: {reason}", {"Retry-After": "1"})

    # ---- predictions ---------------------------------------------------------------------------
    async def predict(
        self, task: str, inputs: list[str], max_new_tokens: int | None, candidates: list[str] | None
    ) -> tuple[list[str], list[list[float]] | None]:
        """Validate -> tokenize -> enqueue -> await with the deadline -> outputs (and scores)."""
        rows = self._rows(task, inputs, max_new_tokens, candidates)
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
            results = await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        except asyncio.TimeoutError:
            pending.cancelled = True  # its rows still queued are dropped, not computed
            raise ApiError(504, "deadline_exceeded", f"no answer within {timeout:g}s") from None
        for r in results:
            if r.error is not None:
                raise r.error if isinstance(r.error, NotFound) else ApiError(500, "inference_failed", str(r.error))
        return [r.output for r in results], None if candidates is None else [r.scores for r in results]

    def _rows(
        self, task: str, inputs: list[str], max_new_tokens: int | None, candidates: list[str] | None
    ) -> list[Row]:
        """The request's rows, after every check that needs no model: 422 / 404 / 413."""
        engine, s = self.require_ready(), self.settings
        validate_name(task, "task")
        self.table.task(task)  # 404
        if not inputs:
            raise ApiError(422, "invalid_request", "inputs must hold at least one string")
        if len(inputs) > s.max_inputs:
            raise ApiError(413, "too_many_inputs", f"{len(inputs)} inputs; at most {s.max_inputs} per request")
        new_tokens = s.default_new_tokens if max_new_tokens is None else max_new_tokens
        if new_tokens > s.max_new_tokens:
            raise ApiError(
                413, "too_many_new_tokens", f"max_new_tokens={new_tokens} exceeds the limit {s.max_new_tokens}"
            )
        ids = engine.tokenize(inputs)
        for i, x in enumerate(ids):
            if len(x) > s.max_input_tokens:
                raise ApiError(
                    413, "input_too_long", f"input {i} has {len(x)} tokens; the limit is {s.max_input_tokens}"
                )
        cand_ids = None
        if candidates is not None:
            if not candidates or len(candidates) > s.max_candidates:
                raise ApiError(413 if candidates else 422, "bad_candidates", f"give 1 to {s.max_candidates} candidates")
            cand_ids = Candidates(candidates, engine.tokenize(candidates))
            if max(len(c) for c in cand_ids.ids) > s.max_input_tokens:
                raise ApiError(413, "candidate_too_long", f"a candidate is over {s.max_input_tokens} tokens")
        return [Row(task, x, new_tokens, cand_ids) for x in ids]

    # ---- mutations: persisted through the store, then published to the table --------------------
    async def put_task(self, task: Task, create_only: bool) -> bool:
        """Returns True when the task is new. 201 is only answered after this returns."""
        self.require_ready()

        def work() -> bool:
            with self.sync.lock:
                self.table.check_fits(task)  # NotFound / InvalidArtifact (422) against the served family
                existed = self.store.has_task(task.name)
                if create_only and existed:
                    raise Conflict(f"task {task.name!r} already exists; use PUT /tasks/{task.name} to replace it")
                self.store.put_task(task, overwrite=True)  # durable before anyone is told
                self.table.put_task(task)
                self.sync.mark("task", task.name)
                return not existed

        created = await asyncio.to_thread(work)
        self.refresh_gauges()
        return created

    async def delete_task(self, name: str) -> None:
        self.require_ready()
        validate_name(name, "task")

        def work() -> None:
            with self.sync.lock:
                if name not in self.table.tasks and not self.store.has_task(name):
                    raise NotFound(f"task {name!r} does not exist")
                if self.store.has_task(name):
                    self.store.delete_task(name)
                if name in self.table.tasks:
                    self.table.remove_task(name)
                self.sync.mark("task", name)

        await asyncio.to_thread(work)
        self.refresh_gauges()

    async def put_family(self, family: Family, create_only: bool) -> bool:
        self.require_ready()
        check_compatible(family.name, family.fingerprint, self.fingerprint)  # 409 for another backbone

        def work() -> bool:
            with self.sync.lock:
                existed = self.store.has_family(family.name)
                if create_only and existed:
                    raise Conflict(f"family {family.name!r} already exists")
                self.store.put_family(family, overwrite=True)
                self.table.put_family(family)
                self.sync.mark("family", family.name)
                return not existed

        created = await asyncio.to_thread(work)
        self.refresh_gauges()
        return created

    async def delete_family(self, name: str) -> None:
        self.require_ready()
        validate_name(name, "family")

        def work() -> None:
            with self.sync.lock:
                self.store.delete_family(name)  # Conflict while tasks use it
                if name in self.table.families:
                    self.table.remove_family(name)
                self.sync.mark("family", name)

        await asyncio.to_thread(work)
        self.refresh_gauges()

    # ---- views -------------------------------------------------------------------------------
    def task_info(self, name: str) -> dict:
        self.require_ready()
        validate_name(name, "task")
        with self.table.lock:
            e = self.table.task(name)
            fam = self.table.families[e.family]
            return {
                "name": name,
                "family": e.family,
                "rank": e.rank,
                "l": fam.length,
                "d": self.table.d,
                "parameters": (fam.length + self.table.d) * e.rank,
                "size_bytes": 4 * (fam.length + self.table.d) * e.rank,
                "created_at": e.created_at,
                "source": e.source,
            }

    def list_tasks(self) -> list[dict]:
        self.require_ready()
        return [self.task_info(n) for n in sorted(self.table.tasks)]

    def family_info(self, name: str) -> dict:
        self.require_ready()
        validate_name(name, "family")
        with self.table.lock:
            e = self.table.family(name)
            tasks = sorted(n for n, t in self.table.tasks.items() if t.family == name)
            return {
                "name": name,
                "l": e.length,
                "d": self.table.d,
                "tasks": len(tasks),
                "created_at": e.created_at,
                "source": e.source,
                "model_id": e.fingerprint.get("model_id"),
            }

    def list_families(self) -> list[dict]:
        self.require_ready()
        return [self.family_info(n) for n in sorted(self.table.families)]

    def refresh_gauges(self) -> None:
        if self.engine is not None:
            self.metrics.tasks_resident.set(len(self.table.tasks))
            self.metrics.families_resident.set(len(self.table.families))
            self.metrics.table_bytes.set(self.table.nbytes())
