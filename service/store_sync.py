"""Keeping what is served in step with the store, whoever writes it.

The API publishes its own writes at once; other writers (the training CLI, other replicas
sharing the store) are noticed by polling the store's VERSION file (cheap), with a full
listing check every ``full_check_s`` for files dropped in by hand. Every change found goes
through :meth:`Mutations.publish`, the path the API's writes take.
"""

from __future__ import annotations

import asyncio
import logging
import time

from prompts_store import DirectoryStore, StoreError

from .metrics import Metrics
from .mutations import Change, Mutations, Stamp

log = logging.getLogger("mpt.service")


class StoreSync:
    def __init__(self, store: DirectoryStore, mutations: Mutations, metrics: Metrics):
        self.store, self.mutations, self.metrics = store, mutations, metrics
        self.version = -1
        self._warned: dict[str, str] = {}

    def sync(self) -> dict[str, int]:
        """Publish every change in the store since the last sync; returns counts by kind."""
        with self.mutations.lock:
            published = self.mutations.published
            version = self.store.version()
            snap = self.store.snapshot()
            counts = {"family": 0, "task": 0, "removed": 0}
            for kind in ("family", "task"):  # families before their tasks
                for key in sorted(k for k in snap if k.startswith(f"{kind}/")):
                    if published.get(key) != snap[key] and self._publish_written(key, snap[key]):
                        counts[kind] += 1
            gone = [k for k in published if k not in snap]
            for key in sorted(gone, key=lambda k: k.startswith("family/")):  # tasks before their families
                kind, name = key.split("/", 1)
                if self._publish(Change(kind, name), "cannot unload"):
                    counts["removed"] += 1
            self.version = version
        for kind, n in counts.items():
            if n:
                self.metrics.store_syncs.labels(kind).inc(n)
        return counts

    def _publish_written(self, key: str, stamp: Stamp) -> bool:
        kind, name = key.split("/", 1)
        try:
            artifact = self.store.get_family(name) if kind == "family" else self.store.get_task(name)
        except StoreError as e:
            self._warn(key, f"not serving {kind} {name!r}: {e}")
            return False
        return self._publish(Change(kind, name, artifact, stamp), "not serving")

    def _publish(self, change: Change, failure: str) -> bool:
        try:
            self.mutations.publish(change)
        except StoreError as e:  # not served; retried at the next sync, warned about once per reason
            self._warn(change.key, f"{failure} {change.kind} {change.name!r}: {e}")
            return False
        self._warned.pop(change.key, None)
        return True

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
