"""The core of mpt-serve: the method's maths and the model side, shared by training, the store and
the server. It imports nothing else of the project and needs only torch and safetensors
(transformers when a backbone is loaded).

    compose      the ONE definition of a task prompt ``P* ∘ (u vᵀ)`` and of its injection
    prompted     the frozen encoder-decoder run with task prompts: encode, greedy decoding, scoring
    backbone     the one device/dtype resolution and the one backbone loader
    fingerprint  what a family is bound to, and the check a server makes
    artifacts    the two artefacts: a family (``P*``) and a task (factors ``u``, ``v``)
    names        the one name rule for families and tasks
    errors       the error vocabulary, each error with a stable code
"""

from .artifacts import ACCEPTED_DTYPES, Family, Task, checked_matrix
from .compose import compose, compose_rows, inject
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
from .names import NAME_PATTERN, validate_name

__all__ = [
    "ACCEPTED_DTYPES",
    "NAME_PATTERN",
    "ChangesUnavailable",
    "Conflict",
    "Family",
    "IncompatibleBackbone",
    "InvalidArtifact",
    "InvalidName",
    "JobLimit",
    "JobLost",
    "JobsUnsupported",
    "NotFound",
    "StoreError",
    "Task",
    "UnsupportedStore",
    "backbone_fingerprint",
    "check_compatible",
    "checked_matrix",
    "compose",
    "compose_rows",
    "inject",
    "validate_name",
]
