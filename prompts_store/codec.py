"""Safetensors encoding of families and tasks (never pickle).

family file: tensor ``shared`` [l, d]; metadata format, name, l, d, fingerprint (JSON), created_at, source
task file:   tensors ``u`` [l, r], ``v`` [d, r]; metadata format, name, family, rank, created_at, source
"""

from __future__ import annotations

import json

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .artifacts import Family, Task
from .errors import InvalidArtifact

FAMILY_FORMAT = "mpt-serve/family@1"
TASK_FORMAT = "mpt-serve/task@1"


def read_safetensors(data: bytes, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Parse safetensors bytes into (tensors, metadata), turning any parse error into InvalidArtifact."""
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except (SafetensorError, ValueError, TypeError, OverflowError) as e:
        raise InvalidArtifact(f"{what}: not a valid safetensors file ({e})") from None
    meta = header.get("__metadata__") or {}
    return tensors, meta


def _expect_tensors(tensors: dict, names: set[str], what: str) -> None:
    if set(tensors) != names:
        raise InvalidArtifact(f"{what}: expected tensors {sorted(names)}, found {sorted(tensors)}")


def family_to_bytes(family: Family) -> bytes:
    meta = {
        "format": FAMILY_FORMAT,
        "name": family.name,
        "l": str(family.length),
        "d": str(family.d),
        "fingerprint": json.dumps(family.fingerprint, sort_keys=True),
        "created_at": family.created_at,
        "source": family.source,
    }
    return st_save({"shared": family.shared}, metadata=meta)


def family_from_bytes(data: bytes, name: str | None = None) -> Family:
    """Decode a family; ``name`` overrides the name in the metadata (e.g. the file name)."""
    tensors, meta = read_safetensors(data, f"family {name!r}" if name else "family")
    what = f"family {name or meta.get('name')!r}"
    _expect_tensors(tensors, {"shared"}, what)
    try:
        fingerprint = json.loads(meta.get("fingerprint", "{}"))
    except json.JSONDecodeError:
        raise InvalidArtifact(f"{what}: metadata 'fingerprint' is not JSON") from None
    kwargs = {k: meta[k] for k in ("created_at", "source") if k in meta}
    return Family(name or meta.get("name", ""), tensors["shared"], fingerprint, **kwargs)


def task_to_bytes(task: Task) -> bytes:
    meta = {
        "format": TASK_FORMAT,
        "name": task.name,
        "family": task.family,
        "rank": str(task.rank),
        "created_at": task.created_at,
        "source": task.source,
    }
    return st_save({"u": task.u, "v": task.v}, metadata=meta)


def task_from_bytes(data: bytes, name: str | None = None, family: str | None = None) -> Task:
    """Decode a task; ``name``/``family`` override (or supply) the metadata's values."""
    tensors, meta = read_safetensors(data, f"task {name!r}" if name else "task")
    what = f"task {name or meta.get('name')!r}"
    _expect_tensors(tensors, {"u", "v"}, what)
    family = family or meta.get("family")
    if not family:
        raise InvalidArtifact(f"{what}: no family given (metadata 'family' is missing)")
    kwargs = {k: meta[k] for k in ("created_at", "source") if k in meta}
    return Task(name or meta.get("name", ""), family, tensors["u"], tensors["v"], **kwargs)
