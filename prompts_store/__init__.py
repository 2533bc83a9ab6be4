"""mpt-serve's prompt store: the representation, composition math and persistence of
multitask prompt tuning prompts. Needs only torch and safetensors."""

from .artifacts import ACCEPTED_DTYPES, Family, Task, checked_matrix
from .codec import family_from_bytes, family_to_bytes, read_safetensors, task_from_bytes, task_to_bytes
from .compose import compose, compose_rows, inject
from .directory import DirectoryStore
from .errors import Conflict, IncompatibleBackbone, InvalidArtifact, InvalidName, NotFound, StoreError
from .fingerprint import backbone_fingerprint, check_compatible
from .names import NAME_PATTERN, validate_name

__all__ = [
    "ACCEPTED_DTYPES",
    "NAME_PATTERN",
    "Conflict",
    "DirectoryStore",
    "Family",
    "IncompatibleBackbone",
    "InvalidArtifact",
    "InvalidName",
    "NotFound",
    "StoreError",
    "Task",
    "backbone_fingerprint",
    "check_compatible",
    "checked_matrix",
    "compose",
    "compose_rows",
    "family_from_bytes",
    "family_to_bytes",
    "inject",
    "read_safetensors",
    "task_from_bytes",
    "task_to_bytes",
    "validate_name",
]
