"""Waking a PostgreSQL store's subscribers: one thread per store object holds a connection that
``LISTEN``s on the store's channel and calls every subscriber when a ``NOTIFY`` arrives.

Writers send ``NOTIFY`` inside their transaction, so it is delivered at commit, in commit order,
with the new head as its payload. A lost connection is retried with backoff; after a reconnect
every subscriber is called once (with None), since notifications sent meanwhile are lost. A
notification is a hint: readers still read ``changes(since)`` and keep polling as the fallback.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

log = logging.getLogger("mpt.store")

CHANNEL = "mpt_store"
Callback = Callable[[int | None], None]


class Listener:
    """Calls subscribers (from its own thread) on every notification of :data:`CHANNEL`."""

    def __init__(self, connect: Callable[[], object], where: str, poll_s: float = 0.5):
        self.connect, self.where, self.poll_s = connect, where, poll_s
        self._callbacks: list[Callback] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._listening = threading.Event()

    def subscribe(self, callback: Callback, wait_s: float = 10.0) -> Callable[[], None]:
        """Add ``callback``; returns the function that removes it. Waits (up to ``wait_s``) until
        the LISTEN is in place, so a change committed after this returns is notified."""
        with self._lock:
            self._callbacks.append(callback)
            if self._thread is None or not self._thread.is_alive() or self._stop.is_set():
                self._stop, self._listening = threading.Event(), threading.Event()  # a stopping thread keeps its own
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop, self._listening), name="mpt-store-listen"
                )
                self._thread.daemon = True
                self._thread.start()
            listening = self._listening
        if not listening.wait(wait_s):
            log.warning(
                "%s: LISTEN not in place after %.0fs; changes are found by polling meanwhile", self.where, wait_s
            )
        return lambda: self._remove(callback)

    def _remove(self, callback: Callback) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
            if not self._callbacks:
                self._stop.set()  # the thread ends within poll_s

    def close(self) -> None:
        with self._lock:
            self._callbacks.clear()
            self._stop.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _fire(self, seq: int | None) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for cb in callbacks:
            try:
                cb(seq)
            except Exception:  # one subscriber's bug must not silence the others
                log.exception("%s: a change subscriber failed", self.where)

    def _run(self, stop: threading.Event, listening: threading.Event) -> None:
        backoff, connected_before = 0.1, False
        while not stop.is_set():
            conn = None
            try:
                conn = self.connect()
                conn.execute(f"LISTEN {CHANNEL}")
                listening.set()
                if connected_before:
                    log.info("%s: LISTEN restored", self.where)
                    self._fire(None)  # whatever was notified while we were away is lost: look now
                connected_before, backoff = True, 0.1
                while not stop.is_set():
                    for note in conn.notifies(timeout=self.poll_s):
                        self._fire(_seq(note.payload))
            except Exception as e:  # the connection broke (server restart, network): retry
                if stop.is_set():
                    break
                log.warning(
                    "%s: LISTEN connection lost (%s); retrying in %.1fs", self.where, " ".join(str(e).split()), backoff
                )
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()


def _seq(payload: str) -> int | None:
    try:
        return int(payload)
    except ValueError:
        return None
