"""Prometheus metrics of one app instance (its own registry, so several apps can coexist)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..inference.rows import Row

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "mpt_request_seconds", "HTTP request latency", ["route", "method"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.responses = Counter("mpt_responses_total", "HTTP responses by status", ["status"], registry=r)
        self.errors = Counter("mpt_errors_total", "error responses (status >= 400) by status", ["status"], registry=r)
        self.queue_wait_seconds = Histogram(
            "mpt_queue_wait_seconds", "time a row waited before its batch started", buckets=LATENCY_BUCKETS, registry=r
        )
        self.inference_seconds = Histogram(
            "mpt_inference_seconds", "forward time of one batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_rows = Histogram("mpt_batch_rows", "rows per batch", buckets=BATCH_BUCKETS, registry=r)
        self.batch_tasks = Histogram("mpt_batch_tasks", "distinct tasks per batch", buckets=BATCH_BUCKETS, registry=r)
        self.mixed_batches = Counter(
            "mpt_mixed_task_batches_total", "batches holding rows of several tasks", registry=r
        )
        self.queued_rows = Gauge("mpt_queue_rows", "rows waiting for a batch", registry=r)
        self.tasks_resident = Gauge("mpt_tasks_resident", "tasks resident on the device", registry=r)
        self.families_resident = Gauge("mpt_families_resident", "families resident on the device", registry=r)
        self.table_bytes = Gauge("mpt_prompt_table_bytes", "bytes of the resident prompt table", registry=r)
        self.store_syncs = Counter(
            "mpt_store_sync_changes_total", "changes picked up from the store's change feed", ["kind"], registry=r
        )
        self.store_sequence = Gauge(
            "mpt_store_sequence", "the store sequence up to which every change is served", registry=r
        )
        self.sync_lag_seconds = Histogram(
            "mpt_store_sync_lag_seconds",
            "from a change's commit in the store to it being served (changes found by the store sync)",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.store_reloads = Counter(
            "mpt_store_reloads_total",
            "full reloads of the store (start-up, or the change feed unavailable)",
            registry=r,
        )
        self.not_served = Counter(
            "mpt_store_not_served_total", "records of the store refused at load or sync", ["kind"], registry=r
        )

    def observe_batch(self, rows: list[Row], started: float, seconds: float) -> None:
        for row in rows:
            self.queue_wait_seconds.observe(max(0.0, started - row.enqueued_at))
        tasks = len({row.task for row in rows})
        self.batch_rows.observe(len(rows))
        self.batch_tasks.observe(tasks)
        if tasks > 1:
            self.mixed_batches.inc()
        self.inference_seconds.observe(seconds)

    def observe_table(self, tasks: int, families: int, nbytes: int) -> None:
        self.tasks_resident.set(tasks)
        self.families_resident.set(families)
        self.table_bytes.set(nbytes)

    def observe_response(self, route: str, method: str, status: int, seconds: float) -> None:
        self.request_seconds.labels(route, method).observe(seconds)
        self.responses.labels(str(status)).inc()
        if status >= 400:
            self.errors.labels(str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
