"""The server's life: starting -> ready -> draining, or failed.

Start-up runs in the background so ``/health/live`` answers at once: wire the components
(backbone, store, prompt table; :func:`build_state`), publish the store into the table, warm up,
start the micro-batcher and the store poller; then ``/health/ready`` answers 200. SIGTERM drains
(readiness 503, new predictions refused, queued ones finish); stop ends the batcher and poller.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable

from ..http.errors import ApiError
from ..settings import Settings
from .metrics import Metrics
from .state import ServiceState, build_state

log = logging.getLogger("mpt.service")

NOT_READY = {"starting": "the model is still loading", "draining": "the server is shutting down"}


YOUNG_GC_THRESHOLD = 20_000  # container allocations between young collections (Python's default: 700)
_gc_lock = threading.Lock()
_gc_servers = 0  # servers of this process running with quiet_gc
_gc_saved: tuple[int, int, int] | None = None


def quiet_gc() -> None:
    """Keep the cyclic GC off the request path, once everything long-lived is built: the heap so far
    (model, tokenizer, app, prompt table) is frozen out of the collector's reach (it re-scanned it in
    every full collection), and young collections run every 20,000 allocations, not 700. At
    concurrency 256 the collector took ~20% of the event loop's time before."""
    global _gc_servers, _gc_saved
    with _gc_lock:
        if _gc_servers == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(_gc_saved[0], YOUNG_GC_THRESHOLD), *_gc_saved[1:])
        _gc_servers += 1
        gc.collect()
        gc.freeze()


def restore_gc() -> None:
    """Undo :func:`quiet_gc` once the process's last server stops (a process that goes on, as a test's)."""
    global _gc_servers
    with _gc_lock:
        _gc_servers -= 1
        if _gc_servers == 0 and _gc_saved is not None:
            gc.set_threshold(*_gc_saved)
            gc.unfreeze()


class Lifecycle:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.metrics = Metrics()
        self.phase = "starting"  # starting -> ready -> draining; or failed
        self.failure: str | None = None
        self.state: ServiceState | None = None
        self.on_fatal: Callable[[], None] | None = None  # called when start-up fails
        self._background: list[asyncio.Task] = []
        self._drain_started: float | None = None  # time.monotonic() of the first begin_drain
        self._quiet_gc = False

    async def start(self) -> None:
        """Begin start-up in the background: /health/live answers at once, /health/ready once loaded."""
        self._background.append(asyncio.create_task(self._start_up()))

    async def _start_up(self) -> None:
        s = self.settings
        try:
            t0 = time.perf_counter()
            state = self.state = await asyncio.to_thread(build_state, s, self.metrics)
            counts = await state.work.run(state.sync.load)
            warm = await asyncio.to_thread(state.engine.warm_up)
            quiet_gc()
            self._quiet_gc = True
            state.batcher.start()
            self._background.append(asyncio.create_task(state.sync.poll_forever(s.store_poll_s)))
            if self.phase == "starting":
                self.phase = "ready"
            log.info(
                "ready in %.1fs: %d families, %d tasks from %s (warm-up %.2fs)",
                time.perf_counter() - t0,
                counts["family"],
                counts["task"],
                state.store.url,
                warm,
            )
            if counts["task"] == 0 and counts["family"] == 0:
                log.warning(
                    "the store %s is empty: upload families and tasks, or seed it, e.g. `mpt store copy demo/store %s`",
                    state.store.url,  # the URL without its password
                    state.store.url,
                )
        except Exception as e:
            self.phase, self.failure = "failed", f"{type(e).__name__}: {e}"
            log.error("start-up failed: %s", self.failure)
            if self.on_fatal is not None:
                self.on_fatal()

    def begin_drain(self) -> None:
        """SIGTERM: readiness and new work answer 503 + Retry-After; queued work still runs. The
        listener stays open meanwhile (``service.__main__.DrainingServer``)."""
        if self.phase in ("starting", "ready"):
            self.phase = "draining"
            log.info("draining: answering new requests 503, finishing in-flight ones")
        if self._drain_started is None:
            self._drain_started = time.monotonic()
        if self.state is not None:
            self.state.batcher.drain()

    async def stop(self) -> None:
        """Drain, then end the batcher (waiting for queued rows only what is left of the drain timeout)."""
        self.begin_drain()
        for task in self._background:
            task.cancel()
        if self.state is not None:
            left = max(0.0, self.settings.drain_timeout_s - (time.monotonic() - self._drain_started))
            await asyncio.to_thread(self.state.batcher.stop, left)
            self.state.requests.close()
            await asyncio.to_thread(self.state.work.close)  # the poll or write under way ends first
            self.state.store.close()
        if self._quiet_gc:
            restore_gc()
            self._quiet_gc = False

    @property
    def ready(self) -> bool:
        return self.phase == "ready"

    def require_ready(self) -> ServiceState:
        """The running components; 503 (with Retry-After) while starting, draining or after a failed start."""
        if self.phase == "ready" and self.state is not None:
            return self.state
        reason = NOT_READY.get(self.phase, f"start-up failed: {self.failure}")
        raise ApiError(503, "not_ready", f"not ready: {reason}", {"Retry-After": "1"})
