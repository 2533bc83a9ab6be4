"""Keeping what is served in step with the store, whoever writes it.

Start-up (:meth:`StoreSync.load`) follows the store's reader contract: ``head()`` first, then
every family and task in bulk (vectorised chunks straight into the prompt table's slot classes),
then the changes since that head. From then on the sync asks the store only for the changes
after the last sequence it applied (``changes(since)``: O(changes), never a scan), every
``MPT_STORE_POLL_S`` seconds or at once when :meth:`wake` is called (a backend that pushes
commits, e.g. PostgreSQL's LISTEN/NOTIFY, calls it through ``Store.watch``).

Every change found goes through :meth:`Mutations.publish`, the path the API's writes take; the
store is read without any of the table's locks held, so reading never holds up an upload, and the
table's sequence rule keeps a change read before a newer API write from replacing it. One reader of
the feed at a time: the poller, or an API write whose table is behind the store (it catches up
through :meth:`poll` before answering, see :mod:`.mutations`). A change whose
record fails the load checks is logged and served as absent; a family trained for another
backbone, or a task over ``MPT_MAX_RANK``, is refused (logged, counted, absent). When the feed
cannot answer (``ChangesUnavailable``, e.g. a directory journal started anew), the store is
reloaded in bulk and what the reload did not see is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import TypeVar

from prompts_store import Change, ChangesUnavailable, NotFound, Store, StoreError

from .metrics import Metrics
from .mutations import Mutations

log = logging.getLogger("mpt.service")

PAGE = 5000  # changes per read of the feed
T = TypeVar("T")


class StoreSync:
    def __init__(self, store: Store, mutations: Mutations, metrics: Metrics, page: int = PAGE):
        self.store, self.mutations, self.metrics, self.page = store, mutations, metrics, page
        self.table = mutations.table
        self.since = -1  # every change up to this sequence is applied
        self._warned: dict[str, str] = {}  # "kind/name" -> the last warning logged for it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._reading = threading.RLock()  # one reader of the feed at a time: the poller or a write catching up
        mutations.follow(self.poll)  # the API's writes catch up through the same path

    # ---- bulk ----------------------------------------------------------------------------------------
    def load(self) -> dict[str, int]:
        """Start-up: everything in bulk, then the changes since; returns counts served and refused."""
        with self._reading:
            return self._load()

    def _load(self) -> dict[str, int]:
        counts = self._bulk(fresh=len(self.table) == 0)
        counts["changes"] = self.catch_up()
        return counts

    def reload(self) -> dict[str, int]:
        """The feed cannot answer: reload in bulk, then drop what the reload did not see."""
        with self._reading:
            return self._reload()

    def _reload(self) -> dict[str, int]:
        log.warning("reloading %s in bulk (its change feed cannot answer from sequence %d)", self.store, self.since)
        self.metrics.store_reloads.inc()
        self.table.begin_reload()
        counts = self._bulk(fresh=False)
        counts["dropped_tasks"], counts["dropped_families"] = self.table.sweep(self.since)
        counts["changes"] = self.catch_up()
        return counts

    def _bulk(self, fresh: bool) -> dict[str, int]:
        t0 = time.perf_counter()
        head = self.store.head()  # FIRST: a write during the load is then seen by it or by changes(head)
        counts = {"family": 0, "task": 0, "refused": 0}
        for chunk in self.store.iter_family_chunks():
            self._refused("family", chunk.rejected)
            for i in range(len(chunk)):
                counts["family"] += self._apply(Change(head, "family", chunk.names[i], chunk.family(i)))
        if fresh:
            self.table.begin_load(self.store.count_tasks())
        gc_was_on = gc.isenabled()
        gc.disable()  # millions of rows, no cycles: collections would only re-walk what is resident
        try:
            for chunk in prefetched(self.store.iter_task_chunks()):
                refused = self.mutations.publish_rows(chunk, head)
                self._refused("task", chunk.rejected | refused)
                counts["task"] += len(chunk) - len(refused)
                counts["refused"] += len(chunk.rejected) + len(refused)
        finally:
            if fresh:
                self.table.end_load()
            if gc_was_on:
                gc.enable()
        self.since = head
        if not fresh:
            return counts
        self.table.advance(head)
        release_free_memory()
        self.metrics.store_sequence.set(head)
        self.metrics.store_reloads.inc()
        self.mutations.observe()
        log.info("loaded %d tasks of %d families in %.2fs", counts["task"], counts["family"], time.perf_counter() - t0)
        return counts

    # ---- the feed ------------------------------------------------------------------------------------
    def catch_up(self) -> int:
        """Apply every change after ``since``, a page at a time; returns how many were read."""
        with self._reading:
            return self._catch_up()

    def _catch_up(self) -> int:
        total = 0
        while True:
            changes = self.store.changes(self.since, limit=self.page)  # no lock held while reading
            if not changes:
                return total
            # within a page: task deletions, then families, then tasks, then family deletions
            order = {("task", False): 0, ("family", True): 1, ("task", True): 2, ("family", False): 3}
            for change in sorted(changes, key=lambda c: order[c.kind, c.value is not None]):
                self._apply(change, from_feed=True)
            self.since = max(c.seq for c in changes)
            self.table.advance(self.since)
            self.metrics.store_sequence.set(self.since)
            for kind in ("family", "task"):
                n = sum(c.kind == kind for c in changes)
                if n:
                    self.metrics.store_syncs.labels(kind).inc(n)
            total += len(changes)
            if len(changes) < self.page:
                return total

    def poll(self) -> int:
        """One look at the store: apply what changed (or reload when the feed cannot say)."""
        with self._reading:
            return self._poll()

    def _poll(self) -> int:
        head = self.store.head()
        if head == self.since:
            return 0
        try:
            if head < self.since:
                raise ChangesUnavailable(f"the store's head went back from {self.since} to {head}")
            return self.catch_up()
        except ChangesUnavailable:
            return sum(self._reload().values())

    def wake(self) -> None:
        """Apply the store's changes now rather than at the next poll. Safe from any thread."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None:
            loop.call_soon_threadsafe(event.set)

    async def poll_forever(self, interval_s: float) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        # a backend that pushes its commits (PostgreSQL: LISTEN/NOTIFY) wakes us at once; polling stays
        unsubscribe = await self.mutations.work.run(self.store.subscribe, lambda _head: self.wake())
        next_at = time.monotonic() + interval_s
        try:
            while True:  # polls start every interval_s (not interval_s after the last one ended)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, next_at - time.monotonic()))
                self._wake.clear()
                next_at = max(next_at + interval_s, time.monotonic() + interval_s / 2)
                try:
                    n = await self.mutations.work.run(self.poll)
                    if n:
                        log.debug("store changes applied: %d (sequence %d)", n, self.since)
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep polling; a broken record or a busy store must not stop the server
                    log.exception("store sync failed")
        finally:
            unsubscribe()

    # ---- one change --------------------------------------------------------------------------------
    def _apply(self, change: Change, from_feed: bool = False) -> bool:
        key = f"{change.kind}/{change.name}"
        if change.error:
            self._warn(key, f"serving {change.kind} {change.name!r} as absent: {change.error}")
        try:
            try:
                applied = self.mutations.publish(change)
            except NotFound:
                if change.kind != "task" or change.value is None or not self._fetch_family(change):
                    raise
                applied = self.mutations.publish(change)  # its family arrived in a later page: fetched, retried
        except StoreError as e:  # cannot be served: absent, warned about once per reason
            self._warn(key, f"not serving {change.kind} {change.name!r}: {e}")
            self.metrics.not_served.labels(change.kind).inc()
            with contextlib.suppress(StoreError):  # a family still used by served tasks stays
                self.mutations.publish(change._replace(value=None))
            return False
        if not change.error:
            self._warned.pop(key, None)
        if applied and from_feed and change.committed_at is not None:
            self.metrics.sync_lag_seconds.observe(max(0.0, time.time() - change.committed_at))
        return applied

    def _fetch_family(self, change: Change) -> bool:
        """A task whose family this server does not know yet: publish the store's current family."""
        try:
            family = self.store.get_family(change.value.family)
        except StoreError:
            return False
        return self._apply(Change(change.seq, "family", family.name, family))

    def _refused(self, kind: str, refused: dict[str, str]) -> None:
        if not refused:
            return
        self.metrics.not_served.labels(kind).inc(len(refused))
        some = "; ".join(f"{n!r}: {why}" for n, why in list(refused.items())[:3])
        more = f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""
        log.warning("not serving %d %s(s) of %s: %s%s", len(refused), kind, self.store, some, more)

    def _warn(self, key: str, message: str) -> None:
        if self._warned.get(key) != message:
            self._warned[key] = message
            log.warning(message)


def release_free_memory() -> None:
    """Hand the heap memory freed after a bulk load (its rows, read and dropped chunk by chunk) back
    to the operating system; glibc keeps it otherwise. A no-op where there is no glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def prefetched(chunks: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``chunks``, read ahead by ``depth`` in a thread: the store's reads (which release the GIL in
    SQLite) overlap the table's copies of the previous chunk."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    done, stop = object(), threading.Event()

    def hand(item: object) -> bool:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                box.put(item, timeout=0.1)
                return True
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not hand(chunk):
                    return  # the consumer stopped: let the store's iterator go
        except BaseException as e:  # handed to the consumer, raised there
            hand(e)
            return
        hand(done)

    reader = threading.Thread(target=read, name="mpt-bulk-read", daemon=True)
    reader.start()
    try:
        while (item := box.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()
