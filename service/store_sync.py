"""Keeping the resident prompt table in step with the store, whoever writes it.

The API publishes its own writes at once; other writers (the training CLI, other replicas
sharing the store) are noticed by polling the store's VERSION file (cheap), with a full
listing check every ``full_check_s`` for files dropped in by hand.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from prompts_store import DirectoryStore, StoreError, check_compatible

from .metrics import Metrics
from .prompt_table import PromptTable

log = logging.getLogger("mpt.service")


class StoreSync:
    def __init__(self, store: DirectoryStore, table: PromptTable, fingerprint: dict, metrics: Metrics):
        self.store, self.table, self.fingerprint, self.metrics = store, table, fingerprint, metrics
        self.lock = threading.Lock()  # serialises store writes + table publishing (API and poller)
        self.known: dict[str, tuple[int, int]] = {}  # "task/<name>" -> (mtime_ns, size) as published
        self.version = -1
        self._warned: dict[str, str] = {}

    def sync(self) -> dict[str, int]:
        """Publish every change in the store since the last sync; returns counts by kind."""
        with self.lock:
            version = self.store.version()
            snap = self.store.snapshot()
            counts = {"family": 0, "task": 0, "removed": 0}
            for key in sorted(k for k in snap if k.startswith("family/")):
                if self.known.get(key) != snap[key] and self._load(key, snap[key]):
                    counts["family"] += 1
            for key in sorted(k for k in snap if k.startswith("task/")):
                if self.known.get(key) != snap[key] and self._load(key, snap[key]):
                    counts["task"] += 1
            gone = [k for k in self.known if k not in snap]
            for key in sorted(gone, key=lambda k: k.startswith("family/")):  # tasks before their families
                kind, name = key.split("/", 1)
                try:
                    (self.table.remove_task if kind == "task" else self.table.remove_family)(name)
                    counts["removed"] += 1
                except StoreError as e:
                    self._warn(key, f"cannot unload {key}: {e}")
                    continue
                del self.known[key]
            self.version = version
        for kind, n in counts.items():
            if n:
                self.metrics.store_syncs.labels(kind).inc(n)
        return counts

    def _load(self, key: str, stat: tuple[int, int]) -> bool:
        kind, name = key.split("/", 1)
        try:
            if kind == "family":
                fam = self.store.get_family(name)
                check_compatible(name, fam.fingerprint, self.fingerprint)
                self.table.put_family(fam)
            else:
                self.table.put_task(self.store.get_task(name))
        except StoreError as e:  # not served; retried at the next sync, warned about once per reason
            self._warn(key, f"not serving {kind} {name!r}: {e}")
            return False
        self.known[key] = stat
        self._warned.pop(key, None)
        return True

    def mark(self, kind: str, name: str) -> None:
        """Record a write the API already published (call with ``lock`` held)."""
        key = f"{kind}/{name}"
        path = self.store.family_path(name) if kind == "family" else self.store.task_path(name)
        try:
            st = path.stat()
            self.known[key] = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            self.known.pop(key, None)

    def _warn(self, key: str, message: str) -> None:
        if self._warned.get(key) != message:
            self._warned[key] = message
            log.warning(message)

    async def poll_forever(self, interval_s: float, full_check_s: float = 30.0) -> None:
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(interval_s)
            try:
                full = time.monotonic() - last_full >= full_check_s
                if full or await asyncio.to_thread(self.store.version) != self.version:
                    counts = await asyncio.to_thread(self.sync)
                    if any(counts.values()):
                        log.info("store changes published: %s", counts)
                    if full:
                        last_full = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep polling; a broken file must not stop the server
                log.exception("store sync failed")
