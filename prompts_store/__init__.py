"""mpt-serve's prompt store: persistence of families and tasks (the artefacts of :mod:`mpt_core`).

    store        the one store interface; the write rules every backend shares
    job_queue    the training-job queue, an interface of its own that database backends implement
    backends/    SQLite (the embedded default), PostgreSQL (replicas on many hosts), a directory
    urls         opening a store from its URL
    codec        safetensors encoding of families and tasks (never pickle)
    blobs        tensors as raw bytes, and many of them stacked into one tensor
    records      the plain records a store hands out (changes, metadata, chunks)
    screen       the load checks of a bulk read
    transaction  the write protocol a backend implements
    jobs         training jobs as records
    admin        whole-store operations (copy, stats, init)

The error classes live in :mod:`mpt_core.errors` and are re-exported here, as the store raises them.
"""

from mpt_core.errors import (
    ChangesUnavailable,
    Conflict,
    IncompatibleBackbone,
    InvalidArtifact,
    InvalidName,
    JobLimit,
    JobLost,
    JobsUnsupported,
    NotFound,
    StoreError,
    UnsupportedStore,
)

from .admin import copy_store, init_store, store_stats
from .backends.directory import DirectoryStore
from .backends.sqlite_store import SQLiteStore
from .codec import family_from_bytes, family_to_bytes, read_safetensors, task_from_bytes, task_to_bytes
from .jobs import Job, JobSpec
from .records import Change, FamilyChunk, FamilyInfo, ReadCounter, TaskChunk, TaskInfo
from .store import Store
from .urls import open_store, parse_store_url

__all__ = [
    "Change",
    "ChangesUnavailable",
    "Conflict",
    "DirectoryStore",
    "FamilyChunk",
    "FamilyInfo",
    "IncompatibleBackbone",
    "InvalidArtifact",
    "InvalidName",
    "Job",
    "JobLimit",
    "JobLost",
    "JobSpec",
    "JobsUnsupported",
    "NotFound",
    "ReadCounter",
    "SQLiteStore",
    "Store",
    "StoreError",
    "TaskChunk",
    "TaskInfo",
    "UnsupportedStore",
    "copy_store",
    "family_from_bytes",
    "family_to_bytes",
    "init_store",
    "open_store",
    "parse_store_url",
    "read_safetensors",
    "store_stats",
    "task_from_bytes",
    "task_to_bytes",
]
