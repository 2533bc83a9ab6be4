"""The micro-batcher: requests of every tenant queue here; a worker thread closes a batch at
``max_batch`` rows, ``max_batch_tokens`` padded tokens or ``max_wait`` after the queue filled,
sorts it by length and hands it to the engine; results go back to each request's future on the
event loop.

Fair between tenants: each task has its own queue of requests, and a batch is filled round-robin
over the tasks that have rows waiting, and within a task round-robin over its requests, one row at
a time. A task flooding the server gets its turn like any other, and a big request (whose
candidates the request path splits into many rows) interleaves with small ones instead of holding
whole batches. Every step is O(1) in the number of tasks: only tasks with rows waiting are held.

Overload is answered at once: a task over its share of the queue raises :class:`TaskQueueFull`
(429), a full queue :class:`QueueFull` (503); rows of a request past its deadline are dropped
between batches, never computed; a draining batcher refuses new work while it finishes what it
holds.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from .rows import BatchCost, Row, RowResult

log = logging.getLogger("mpt.service")


class QueueFull(Exception):
    pass


class TaskQueueFull(Exception):
    pass


class Draining(Exception):
    pass


class Pending:
    """One request's rows: results fill in from the worker thread; the future resolves on the loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        rows: Sequence[Row],
        key: str | None = None,
        deadline: float | None = None,
    ):
        self.loop, self.rows = loop, list(rows)
        self.key = key if key is not None else (self.rows[0].task if self.rows else "")  # whose queue it joins
        self.deadline = deadline  # time.perf_counter() after which its rows not yet started are dropped
        self.future: asyncio.Future[list[RowResult]] = loop.create_future()
        self.results: list[RowResult | None] = [None] * len(self.rows)
        self.remaining = len(self.rows)
        self.cancelled = False  # its rows still queued are dropped, not computed
        self.error: Exception | None = None  # the whole request's failure (its future raises it)
        self.next = 0  # the next row to hand to a batch (worker side, under the batcher's lock)

    def cancel(self) -> None:
        """The request gave up (its deadline passed): drop its rows that have not run yet."""
        self.cancelled = True

    def expired(self, now: float) -> bool:
        return self.cancelled or (self.deadline is not None and now >= self.deadline)

    def _resolve(self) -> None:
        if self.future.done():
            return
        if self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(self.results)  # type: ignore[arg-type]

    def deliver(self, index: int, result: RowResult) -> bool:  # worker thread
        """Record one row's result; True once every row of the request has one."""
        self.results[index] = result
        self.remaining -= 1
        return self.remaining == 0


def _resolve_all(done: list[Pending]) -> None:  # event loop
    for pending in done:
        pending._resolve()


def resolve(done: list[Pending]) -> None:
    """Resolve the futures of the requests a batch completed: one wake-up of each event loop per
    batch (``call_soon_threadsafe`` writes to the loop's self-pipe), not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Pending]] = {}
    for pending in done:
        by_loop.setdefault(pending.loop, []).append(pending)
    for loop, pendings in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody awaits these any more
            loop.call_soon_threadsafe(_resolve_all, pendings)


class TaskQueue:
    """One task's requests with rows waiting, served round-robin."""

    __slots__ = ("requests", "rows")

    def __init__(self) -> None:
        self.requests: collections.deque[Pending] = collections.deque()
        self.rows = 0


MIN_FIT_BATCH = 32  # below this, a batch's fixed cost outweighs its padding: the waiting rows go as they are

BatchObserver = Callable[[list[Row], float, float], None]  # rows, start time (perf_counter), run seconds


class MicroBatcher:
    def __init__(
        self,
        run_batch: Callable[[list[Row]], list[RowResult]],
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        observe: BatchObserver | None = None,
        *,
        max_task_queue: int | None = None,
        max_batch_tokens: int | None = None,
        batch_sizes: Callable[[], Sequence[int] | None] | None = None,
    ):
        self.run_batch, self.max_batch, self.max_wait_s, self.max_queue = run_batch, max_batch, max_wait_s, max_queue
        self.batch_sizes = batch_sizes  # the sizes the engine runs batches at (it pads up to the next), if any
        self.max_task_queue = max_task_queue or max_queue
        self.max_batch_tokens = max_batch_tokens  # None: no token budget
        self.observe = observe
        self._tasks: dict[str, TaskQueue] = {}  # only tasks with rows waiting
        self._ring: collections.deque[str] = collections.deque()  # those tasks, in round-robin order
        self._rows = 0  # rows waiting, all tasks
        self._since = 0.0  # when the queue last became non-empty (perf_counter)
        self._cond = threading.Condition()
        self._draining = False
        self._stopped = False
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="mpt-batcher", daemon=True)

    # ---- event loop side ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def submit(self, rows: Sequence[Row], deadline: float | None = None, key: str | None = None) -> Pending:
        """Queue one request's rows under ``key`` (default: the first row's task).

        A task with rows already waiting may not exceed ``max_task_queue`` (:class:`TaskQueueFull`);
        a request into an empty task queue is always taken while the whole queue has room
        (:class:`QueueFull`), so a big request is never refused for its size alone."""
        pending = Pending(asyncio.get_running_loop(), rows, key, deadline)
        n = len(pending.rows)
        with self._cond:
            if self._draining:
                raise Draining()
            queue = self._tasks.get(pending.key)
            if queue is not None and queue.rows + n > self.max_task_queue:
                raise TaskQueueFull()
            if self._rows + n > self.max_queue:
                raise QueueFull()
            if n == 0:
                pending._resolve()
                return pending
            if queue is None:
                queue = self._tasks[pending.key] = TaskQueue()
                self._ring.append(pending.key)
            first = self._rows == 0
            if first:
                self._since = time.perf_counter()
            queue.requests.append(pending)
            queue.rows += n
            self._rows += n
            if first or self._rows >= self.max_batch:  # what the worker waits for: a first row, a full batch
                self._cond.notify()  # (not every row: each wake-up takes the GIL from the event loop)
        return pending

    def queued_rows(self) -> int:
        return self._rows

    def drain(self) -> None:
        """Refuse new work from now on; what is queued still runs, at once (no new row can come to
        fill the batch being formed: it does not wait out ``max_wait``)."""
        with self._cond:
            self._draining = True
            self._cond.notify_all()

    def idle(self) -> bool:
        with self._cond:
            return not self._rows and not self._busy

    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Drain, wait for the queue to empty (up to ``timeout``), then end the worker thread: it
        finishes the batch it is running and takes no other; requests still queued get :class:`Draining`."""
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
            while not self._rows and not self._stopped:
                self._cond.wait()
            while self._rows < self.max_batch and not self._stopped and not self._draining:
                left = self._since + self.max_wait_s - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._stopped:
                self._abandon()
                return None
            batch = self._pop_batch(time.perf_counter(), self.batch_limit(min(self._rows, self.max_batch)))
            self._busy = bool(batch)
            return batch

    def _abandon(self) -> None:
        """Stopped: every request still queued is answered :class:`Draining`; none of its rows runs."""
        left = [pending for queue in self._tasks.values() for pending in queue.requests]
        self._tasks.clear()
        self._ring.clear()
        self._rows = 0
        for pending in left:
            pending.error = Draining()
        resolve(left)

    def _head(self, now: float) -> tuple[str, TaskQueue, Pending] | None:
        """The request whose row is next, round-robin; drops what is past its deadline on the way."""
        while self._ring:
            key = self._ring[0]
            queue = self._tasks[key]
            while queue.requests:
                pending = queue.requests[0]
                if not pending.expired(now):
                    return key, queue, pending
                queue.requests.popleft()  # past its deadline: its rows are dropped, not computed
                left = len(pending.rows) - pending.next
                queue.rows -= left
                self._rows -= left
                pending.next = len(pending.rows)
            self._ring.popleft()
            del self._tasks[key]
        return None

    def batch_limit(self, waiting: int) -> int:
        """The rows to take when ``waiting`` rows (at most a full batch) wait: all of them, except just
        past one of the engine's batch sizes (at least :data:`MIN_FIT_BATCH`, passed by at most half),
        where that size is taken and the rest open the next batch. The engine pads a batch up to its
        next size: 130 rows would cost what 256 do, 128 and then 2 cost about half as much; in a
        closed loop the batches otherwise settle into such pairs (e.g. 83 + 173 rows)."""
        sizes = self.batch_sizes() if self.batch_sizes is not None else None
        if not sizes or waiting >= self.max_batch:
            return waiting
        i = bisect.bisect_right(sizes, waiting)  # sizes[i - 1] <= waiting < sizes[i]
        if i == 0 or i == len(sizes) or sizes[i - 1] == waiting:
            return waiting  # below every size, above them all (no padding), or exactly one
        fit = sizes[i - 1]
        return fit if fit >= MIN_FIT_BATCH and waiting - fit <= fit // 2 else waiting

    def _pop_batch(self, now: float, limit: int | None = None) -> list[tuple[Pending, int]]:
        batch: list[tuple[Pending, int]] = []
        cost = BatchCost()
        limit = self.max_batch if limit is None else limit
        while len(batch) < limit:
            head = self._head(now)
            if head is None:
                break
            key, queue, pending = head
            row = pending.rows[pending.next]
            if batch and self.max_batch_tokens is not None and cost.with_row(row) > self.max_batch_tokens:
                break  # the row opens the next batch (a lone row always fits)
            cost.add(row)
            batch.append((pending, pending.next))
            pending.next += 1
            queue.rows -= 1
            self._rows -= 1
            if pending.next < len(pending.rows):
                queue.requests.rotate(-1)  # the task's next request gets the next turn
            else:
                queue.requests.popleft()
            if queue.requests:
                self._ring.rotate(-1)  # the next task gets the next turn
            else:
                self._ring.popleft()
                del self._tasks[key]
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
            resolve([pending for (pending, i), result in zip(batch, results) if pending.deliver(i, result)])
            with self._cond:
                self._busy = False
