"""Training jobs as records: what a tenant asked to train (:class:`JobSpec`, stored as JSON, never
pickled) and a job's row in the store (:class:`Job`). The rules that move a job between states
live in :mod:`.job_queue`; the tables in the SQL backends' schemas.

    queued --claim--> running --finish--> succeeded | failed | cancelled
      |                  |  \\--lease lost--> queued (attempts left) | failed (none left)
      \\--cancel--> cancelled   \\--cancel--> cancel_requested, the worker stops at its next step

A succeeded job wrote its task (and, mode ``full``, its family) in the same transaction that marked
it succeeded; a failed or cancelled one changed nothing else.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from mpt_core.errors import InvalidArtifact
from mpt_core.names import validate_name

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")
MODES = ("factors", "full")  # factors: u, v of a new task of the family; full: P*, u, v (a family of one)
MAX_SEED = 2**31 - 1
INITS = ("auto", "ones", "mean")  # or the name of a task of the family


def _pairs(rows: object, what: str) -> tuple[tuple[str, str], ...]:
    """``[{"input": str, "target": str}, ...]`` (or ``[[input, target], ...]``) as a tuple of pairs,
    every text non-blank; the error names the row."""
    if not isinstance(rows, (list, tuple)):
        raise InvalidArtifact(f"{what} must be a list of {{'input', 'target'}} objects")
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            pair = (row.get("input"), row.get("target"))
        elif isinstance(row, (list, tuple)) and len(row) == 2:
            pair = tuple(row)
        else:
            raise InvalidArtifact(f"{what}[{i}] must be an object with 'input' and 'target'")
        for key, text in zip(("input", "target"), pair):
            if not isinstance(text, str):
                raise InvalidArtifact(f"{what}[{i}].{key} must be a string, got {type(text).__name__}")
            if not text.strip():
                raise InvalidArtifact(f"{what}[{i}].{key} is empty")
        out.append((pair[0], pair[1]))
    return tuple(out)


@dataclass(frozen=True)
class JobSpec:
    """What to train: the examples (``input`` -> ``target``), optional dev examples (checkpoint
    selection and the job's dev metrics), the optimizer steps, the seed, whether the result may
    replace an existing task, and the factor init. Everything else is the training defaults of
    ``mpt train adapt``."""

    examples: tuple[tuple[str, str], ...]
    dev: tuple[tuple[str, str], ...] = ()
    steps: int = 100
    seed: int = 0
    overwrite: bool = False
    init: str = "auto"  # the factor init of `mpt train adapt --init`: auto, ones, mean, or a task of the family

    def __post_init__(self) -> None:
        object.__setattr__(self, "examples", _pairs(self.examples, "examples"))
        object.__setattr__(self, "dev", _pairs(self.dev, "dev"))
        if len(self.examples) < 2:
            raise InvalidArtifact(f"a job needs at least 2 examples, got {len(self.examples)}")
        for name, low, high in (("steps", 1, None), ("seed", 0, MAX_SEED)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low or (high and value > high):
                raise InvalidArtifact(
                    f"{name}={value!r} must be an integer >= {low}" + (f", <= {high}" if high else "")
                )
        if not isinstance(self.overwrite, bool):
            raise InvalidArtifact(f"overwrite={self.overwrite!r} must be true or false")
        if self.init not in INITS:
            validate_name(self.init, "init task")

    def to_json(self) -> str:
        return json.dumps(
            {
                "examples": [{"input": x, "target": y} for x, y in self.examples],
                "dev": [{"input": x, "target": y} for x, y in self.dev],
                "steps": self.steps,
                "seed": self.seed,
                "overwrite": self.overwrite,
                "init": self.init,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        try:
            obj = json.loads(text)
        except (TypeError, ValueError) as e:
            raise InvalidArtifact(f"a job spec is not JSON ({e})") from None
        if not isinstance(obj, dict):
            raise InvalidArtifact("a job spec must be a JSON object")
        known = {"examples", "dev", "steps", "seed", "overwrite", "init"}
        return cls(**{k: v for k, v in obj.items() if k in known})


@dataclass(frozen=True)
class Job:
    """A job's row. Times are Unix seconds of the store's clock (PostgreSQL's for a PostgreSQL
    store, so workers on other hosts agree on leases). ``spec`` is None in listings."""

    id: int
    task: str
    family: str
    mode: str
    status: str
    examples: int  # training examples (the count; the texts are in spec)
    attempts: int
    max_attempts: int
    timeout_s: float
    created_at: float
    steps: int
    step: int = 0
    worker: str | None = None
    lease_s: float | None = None
    heartbeat_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    loss: float | None = None
    dev: dict | None = None  # dev metrics: during training {"score"}, at the end exact_match, rank_accuracy, ...
    error: str | None = None
    cancel_requested: bool = False
    spec: JobSpec | None = field(default=None, compare=False)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def elapsed_s(self, now: float) -> float:
        """Seconds from submission to its end (or to ``now`` while it is active)."""
        end = self.finished_at if self.finished_at is not None else now
        return max(0.0, end - self.created_at)

    def lease_expired(self, now: float) -> bool:
        return self.status == "running" and (self.heartbeat_at or 0) + (self.lease_s or 0) < now

    def timed_out(self, now: float) -> bool:
        """Past its timeout by more than a lease: its worker should have stopped it by now."""
        return self.status == "running" and (self.started_at or now) + self.timeout_s + (self.lease_s or 0) < now


def finite_or_none(x: float | None) -> float | None:
    """A loss as stored: None when missing or not finite (JSON and SQL have no NaN they agree on)."""
    return None if x is None or not math.isfinite(x) else float(x)
