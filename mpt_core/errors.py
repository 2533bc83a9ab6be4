"""The error vocabulary of mpt-serve's artefacts and their store. Each error carries a stable
machine-readable ``code``.

The core raises the artefact ones (a bad name, a malformed tensor, another backbone); the prompt
store raises the rest. They live here, in one hierarchy under :class:`StoreError`, because every
layer catches them: the service maps them to HTTP statuses (422 / 404 / 409 / 503), the CLI
prints their message.
"""


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""

    code = "store_error"


class InvalidName(StoreError, ValueError):
    """A family or task name does not follow the name rule."""

    code = "invalid_name"


class InvalidArtifact(StoreError, ValueError):
    """A tensor has the wrong shape, dtype or non-finite values, or a file is malformed."""

    code = "invalid_artifact"


class NotFound(StoreError, LookupError):
    """The named family or task does not exist."""

    code = "not_found"

    def __str__(self) -> str:  # LookupError would otherwise quote the message
        return str(self.args[0]) if self.args else "not found"


class Conflict(StoreError):
    """A name clash, or a family still used by tasks."""

    code = "conflict"


class IncompatibleBackbone(Conflict):
    """A family was trained for another backbone than the one in use."""

    code = "backbone_mismatch"


class ChangesUnavailable(StoreError):
    """The change feed no longer (or never) held the changes asked for: reload the store in bulk."""

    code = "changes_unavailable"


class UnsupportedStore(StoreError, ValueError):
    """A store URL names a backend that does not exist or is not available in this build."""

    code = "unsupported_store"


class JobsUnsupported(StoreError):
    """Training jobs need a database store (SQLite or PostgreSQL); a directory store has none."""

    code = "jobs_unsupported"


class JobLimit(StoreError):
    """A job submission over a concurrency limit (jobs queued or running, per family or in total)."""

    code = "too_many_jobs"

    def __init__(self, message: str, scope: str, limit: int):
        super().__init__(message)
        self.scope, self.limit = scope, limit


class JobLost(StoreError):
    """A worker reported on a job it no longer holds (requeued after a lost lease, or finished)."""

    code = "job_lost"
