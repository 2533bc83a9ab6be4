"""Tokenizing off the event loop, many requests per call: requests hand their texts to one thread,
which tokenizes everything that queued meanwhile in one call of the Rust tokenizer (the GIL released
while it runs) and resolves the requests' futures with one wake-up of the event loop.

At high concurrency tokenizing was the largest single cost of a ``/predict`` request left on the
event loop (~60 us of ~250 for a 128-token input): one event loop thread is what bounds the
server's requests per second, and the Rust call runs in parallel with it on another core. The
requests of one call wait for each other, so a call takes at most ``max_chars`` characters (and
always one request); the request path sends big requests to its thread pool instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable, Sequence

Encode = Callable[[list[str]], list[list[int]]]


class Stopped(Exception):
    pass


def _settle(done: list[tuple[asyncio.Future, list[list[int]] | BaseException]]) -> None:  # event loop
    for future, result in done:
        if future.done():  # its request was cancelled meanwhile
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


class TokenizeStage:
    def __init__(self, encode: Encode, max_chars: int = 1 << 16):
        self.encode, self.max_chars = encode, max_chars
        self._queue: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future, list[str], int]] = (
            collections.deque()
        )
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="mpt-tokenize-stage", daemon=True)
        self._thread.start()

    def tokenize(self, texts: Sequence[str]) -> asyncio.Future:
        """A future of the texts' token ids (event loop side)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        texts = list(texts)
        with self._cond:
            if self._stopped:
                raise Stopped()
            self._queue.append((loop, future, texts, sum(map(len, texts))))
            if len(self._queue) == 1:  # the thread sleeps only on an empty queue
                self._cond.notify()
        return future

    def stop(self) -> None:
        """End the thread; requests still queued get :class:`Stopped`."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _take(self) -> list[tuple[asyncio.AbstractEventLoop, asyncio.Future, list[str], int]] | None:
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            if self._stopped:
                left, self._queue = list(self._queue), collections.deque()
                self._answer([(loop, future, Stopped()) for loop, future, _, _ in left])
                return None
            work = [self._queue.popleft()]
            chars = work[0][3]
            while self._queue and chars + self._queue[0][3] <= self.max_chars:
                work.append(self._queue.popleft())
                chars += work[-1][3]
            return work

    def _loop(self) -> None:
        while (work := self._take()) is not None:
            flat = [text for _, _, texts, _ in work for text in texts]
            try:
                ids = self.encode(flat)
            except Exception as e:  # every request of the call reports it
                self._answer([(loop, future, e) for loop, future, _, _ in work])
                continue
            done, k = [], 0
            for loop, future, texts, _ in work:
                done.append((loop, future, ids[k : k + len(texts)]))
                k += len(texts)
            self._answer(done)

    @staticmethod
    def _answer(done: list[tuple[asyncio.AbstractEventLoop, asyncio.Future, object]]) -> None:
        """One ``call_soon_threadsafe`` per event loop for the whole call."""
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for loop, future, result in done:
            by_loop.setdefault(loop, []).append((future, result))
        for loop, results in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody awaits these any more
                loop.call_soon_threadsafe(_settle, results)
