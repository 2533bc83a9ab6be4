"""Where the server's store work runs: one small pool of threads, so the store connections a
process holds stay bounded.

Stores keep one connection per thread that uses them (SQLite, PostgreSQL), and never release it
while the store is open. Run through the event loop's default executor (up to 32 threads), a burst
of uploads left up to 32 connections per process (PostgreSQL's ``max_connections`` is 100 for
every replica together). The API's writes, the store sync's polls and its start-up load all run
here instead: ``THREADS`` threads, hence at most that many connections (plus the one that opened
the store and the bulk load's read-ahead thread). Writes are serialised by the store anyway; a
second thread lets a poll or a read proceed beside a write.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

THREADS = 2


class StoreWork:
    def __init__(self, threads: int = THREADS):
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="mpt-store")

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on one of the store threads, awaited without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    def close(self) -> None:
        """Finish the work under way and end the threads (blocking: call it off the event loop)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
