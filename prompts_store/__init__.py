"""mpt-serve's prompt store: the representation, composition math and persistence of
multitask prompt tuning prompts. Needs only torch and safetensors."""

from .admin import copy_store, init_store, store_stats
from .artifacts import ACCEPTED_DTYPES, Family, Task, checked_matrix
from .codec import family_from_bytes, family_to_bytes, read_safetensors, task_from_bytes, task_to_bytes
from .compose import compose, compose_rows, inject
from .directory import DirectoryStore
from .errors import (
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
from .fingerprint import backbone_fingerprint, check_compatible
from .jobs import Job, JobSpec
from .names import NAME_PATTERN, validate_name
from .records import Change, FamilyChunk, FamilyInfo, ReadCounter, TaskChunk, TaskInfo
from .sqlite_store import SQLiteStore
from .store import Store
from .urls import open_store, parse_store_url

__all__ = [
    "ACCEPTED_DTYPES",
    "NAME_PATTERN",
    "Change",
    "ChangesUnavailable",
    "Conflict",
    "DirectoryStore",
    "Family",
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
    "Task",
    "TaskChunk",
    "TaskInfo",
    "UnsupportedStore",
    "backbone_fingerprint",
    "check_compatible",
    "checked_matrix",
    "compose",
    "compose_rows",
    "copy_store",
    "family_from_bytes",
    "family_to_bytes",
    "init_store",
    "inject",
    "open_store",
    "parse_store_url",
    "read_safetensors",
    "store_stats",
    "task_from_bytes",
    "task_to_bytes",
    "validate_name",
]
