"""The two artefacts of the store: a family (shared prompt ``P*``) and a task (rank-r factors).

Constructing one validates it: names, shapes, dtypes and finiteness. Tensors are kept as
contiguous float32 on the CPU, whatever dtype they arrived in.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .errors import InvalidArtifact
from .names import validate_name

ACCEPTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def checked_matrix(value: object, what: str, rows: int | None = None) -> torch.Tensor:
    """Validate one stored matrix and return it as contiguous float32 on the CPU.

    A 1-D tensor is read as a rank-one column, so ``u`` may be given as ``(l,)`` or ``(l, 1)``.
    ``rows``, when given, is the required first dimension.
    """
    if not isinstance(value, torch.Tensor):
        raise InvalidArtifact(f"{what} must be a tensor, got {type(value).__name__}")
    if value.dtype not in ACCEPTED_DTYPES:
        raise InvalidArtifact(f"{what} has dtype {value.dtype}; accepted: float32, bfloat16, float16")
    if value.ndim == 1:
        value = value.unsqueeze(-1)
    if value.ndim != 2:
        raise InvalidArtifact(f"{what} must be 2-D, got shape {tuple(value.shape)}")
    if value.shape[0] == 0 or value.shape[1] == 0:
        raise InvalidArtifact(f"{what} is empty: shape {tuple(value.shape)}")
    if rows is not None and value.shape[0] != rows:
        raise InvalidArtifact(f"{what} has {value.shape[0]} rows, expected {rows} (shape {tuple(value.shape)})")
    value = value.detach().to(device="cpu", dtype=torch.float32).contiguous()
    bad = int((~torch.isfinite(value)).sum())
    if bad:
        raise InvalidArtifact(f"{what} holds {bad} non-finite value(s) (NaN or Inf)")
    return value


def check_factor_shapes(task: str, u_shape: Sequence[int], v_shape: Sequence[int], family: str, l: int, d: int) -> None:
    """THE check that a task's factors u (l, r), v (d, r) fit a family's prompt (l, d): raise
    :class:`InvalidArtifact` (HTTP 422) naming each mismatch. Stores, the service's prompt table
    and importers all call this one."""
    wrong = []
    if u_shape[0] != l:
        wrong.append(f"u has length {u_shape[0]}, family {family!r} needs l={l}")
    if v_shape[0] != d:
        wrong.append(f"v has length {v_shape[0]}, family {family!r} needs d={d}")
    if wrong:
        raise InvalidArtifact(
            f"task {task!r}: factors u {tuple(u_shape)}, v {tuple(v_shape)} do not fit: {'; '.join(wrong)}"
        )


@dataclass(frozen=True)
class Family:
    """One shared prompt ``P*`` of shape (l, d), bound to the backbone it was trained for."""

    name: str
    shared: torch.Tensor  # (l, d)
    fingerprint: dict
    created_at: str = field(default_factory=utc_now)
    source: str = ""

    def __post_init__(self) -> None:
        validate_name(self.name, "family")
        object.__setattr__(self, "shared", checked_matrix(self.shared, f"family {self.name!r}: shared prompt"))
        if not isinstance(self.fingerprint, dict):
            raise InvalidArtifact(f"family {self.name!r}: fingerprint must be a dict")
        d_model = self.fingerprint.get("d_model")
        if d_model is not None and d_model != self.d:
            raise InvalidArtifact(
                f"family {self.name!r}: shared prompt width {self.d} differs from the backbone's d_model {d_model}"
            )

    @property
    def length(self) -> int:
        """l, the number of virtual tokens."""
        return self.shared.shape[0]

    @property
    def d(self) -> int:
        return self.shared.shape[1]


@dataclass(frozen=True)
class Task:
    """A task's factors: ``u`` (l, r) and ``v`` (d, r); its prompt is ``P* * (u @ v.T)``."""

    name: str
    family: str
    u: torch.Tensor  # (l, r)
    v: torch.Tensor  # (d, r)
    created_at: str = field(default_factory=utc_now)
    source: str = ""

    def __post_init__(self) -> None:
        validate_name(self.name, "task")
        validate_name(self.family, "family")
        u = checked_matrix(self.u, f"task {self.name!r}: u")
        v = checked_matrix(self.v, f"task {self.name!r}: v")
        if u.shape[1] != v.shape[1]:
            raise InvalidArtifact(
                f"task {self.name!r}: u has rank {u.shape[1]} but v has rank {v.shape[1]} "
                f"(shapes {tuple(u.shape)} and {tuple(v.shape)})"
            )
        object.__setattr__(self, "u", u)
        object.__setattr__(self, "v", v)

    @property
    def rank(self) -> int:
        return self.u.shape[1]

    def check_fits(self, family: Family) -> None:
        """Raise :class:`InvalidArtifact` unless the factors match the family's (l, d)."""
        if family.name != self.family:
            raise InvalidArtifact(f"task {self.name!r} belongs to family {self.family!r}, not {family.name!r}")
        check_factor_shapes(self.name, self.u.shape, self.v.shape, family.name, family.length, family.d)

    @classmethod
    def identity(cls, name: str, family: Family, source: str = "") -> Task:
        """The task whose prompt is ``P*`` itself (u, v = ones): how a vanilla prompt is stored."""
        return cls(name, family.name, torch.ones(family.length, 1), torch.ones(family.d, 1), source=source)
