"""The micro-batcher: requests of every tenant queue together; a worker thread closes a batch at
``max_batch`` rows or ``max_wait`` after its first row, sorts it by length and hands it to the
engine; results go back to each request's future on the event loop.

Overload is answered at once: a full queue raises :class:`QueueFull` (503 + Retry-After), a
request past its deadline is dropped from the queue (504), and a draining batcher refuses new
work (503) while it finishes what it holds.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence

from .rows import Row, RowResult

log = logging.getLogger("mpt.service")


class QueueFull(Exception):
    pass


class Draining(Exception):
    pass


class Pending:
    """One request's rows: results fill in from the worker thread; the future resolves on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, rows: Sequence[Row]):
        self.loop, self.rows = loop, list(rows)
        self.future: asyncio.Future[list[RowResult]] = loop.create_future()
        self.results: list[RowResult | None] = [None] * len(self.rows)
        self.remaining = len(self.rows)
        self.cancelled = False  # its rows still queued are dropped, not computed

    def cancel(self) -> None:
        """The request gave up (its deadline passed): drop its rows that have not run yet."""
        self.cancelled = True

    def _resolve(self) -> None:
        if not self.future.done():
            self.future.set_result(self.results)  # type: ignore[arg-type]

    def deliver(self, index: int, result: RowResult) -> None:  # worker thread
        self.results[index] = result
        self.remaining -= 1
        if self.remaining == 0:
            self.loop.call_soon_threadsafe(self._resolve)


BatchObserver = Callable[[list[Row], float, float], None]  # rows, start time (perf_counter), run seconds


class MicroBatcher:
    def __init__(
        self,
        run_batch: Callable[[list[Row]], list[RowResult]],
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        observe: BatchObserver | None = None,
    ):
        self.run_batch, self.max_batch, self.max_wait_s, self.max_queue = run_batch, max_batch, max_wait_s, max_queue
        self.observe = observe
        self._queue: collections.deque[tuple[Pending, int]] = collections.deque()
        self._cond = threading.Condition()
        self._draining = False
        self._stopped = False
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="mpt-batcher", daemon=True)

    # ---- event loop side ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def submit(self, rows: Sequence[Row]) -> Pending:
        pending = Pending(asyncio.get_running_loop(), rows)
        with self._cond:
            if self._draining:
                raise Draining()
            if len(self._queue) + len(rows) > self.max_queue:
                raise QueueFull()
            self._queue.extend((pending, i) for i in range(len(rows)))
            self._cond.notify()
        return pending

    def queued_rows(self) -> int:
        return len(self._queue)

    def drain(self) -> None:
        """Refuse new work from now on; what is queued still runs."""
        with self._cond:
            self._draining = True

    def idle(self) -> bool:
        with self._cond:
            return not self._queue and not self._busy

    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Drain, wait for the queue to empty (up to ``timeout``), then end the worker thread."""
        self.drain()
        deadline = time.monotonic() + timeout
        while self.running() and not self.idle() and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self.running():
            self._thread.join(timeout=5)

    # ---- worker thread ------------------------------------------------------------------------
    def _take_batch(self) -> list[tuple[Pending, int]] | None:
        with self._cond:
            while not self._queue:
                if self._stopped:
                    return None
                self._cond.wait()
            first_at = self._queue[0][0].rows[self._queue[0][1]].enqueued_at
            while len(self._queue) < self.max_batch and not self._stopped:
                left = first_at + self.max_wait_s - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = []
            while self._queue and len(batch) < self.max_batch:
                pending, i = self._queue.popleft()
                if not pending.cancelled:  # a request past its deadline is dropped, not computed
                    batch.append((pending, i))
            self._busy = bool(batch)
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            if not batch:
                continue
            batch.sort(key=lambda item: len(item[0].rows[item[1]].input_ids))  # sorted by length, padded once
            rows = [p.rows[i] for p, i in batch]
            started = time.perf_counter()
            try:
                results = self.run_batch(rows)
            except Exception as e:  # the whole batch failed: every row reports it
                log.exception("batch of %d rows failed", len(rows))
                results = [RowResult(error=e) for _ in rows]
            elapsed = time.perf_counter() - started
            if self.observe is not None:
                self.observe(rows, started, elapsed)
            for (pending, i), result in zip(batch, results):
                pending.deliver(i, result)
            with self._cond:
                self._busy = False
