"""Safetensors encoding of families and tasks (never pickle).

family file: tensor ``shared`` [l, d]; metadata format, name, l, d, fingerprint (JSON), created_at, source
task file:   tensors ``u`` [l, r], ``v`` [d, r]; metadata format, name, family, rank, created_at, source

Also the cheap readers a directory store needs at scale: a file's header without its tensors, and
a task file's row for bulk loading (its float32 bytes sliced out, no tensor built).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from mpt_core.artifacts import Family, Task
from mpt_core.errors import InvalidArtifact

from .blobs import to_blob

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


def read_header(path: Path, what: str) -> dict | None:
    """A safetensors file's JSON header (no tensor data read), or None when the file does not exist."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or n > 100_000_000:
                raise InvalidArtifact(f"{what}: corrupt safetensors header")
            return json.loads(f.read(n))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidArtifact(f"{what}: corrupt safetensors header") from None


def header_shape(header: dict, tensor: str, what: str) -> tuple[int, int]:
    shape = (header.get(tensor) or {}).get("shape")
    if not isinstance(shape, list) or len(shape) != 2:
        raise InvalidArtifact(f"{what}: tensor {tensor!r} is missing or not 2-D")
    return int(shape[0]), int(shape[1])


def task_row(name: str, data: bytes) -> tuple:
    """A task file -> the chunk builder's row, slicing the float32 bytes out of the file when it is
    the layout this store writes (F32, 2-D, matching ranks), decoding and validating it otherwise."""
    try:
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + n])
        u, v, meta = header["u"], header["v"], header.get("__metadata__") or {}
        (l, r), (d, r2) = u["shape"], v["shape"]
        (ua, ub), (va, vb) = u["data_offsets"], v["data_offsets"]
        fast = (
            u["dtype"] == v["dtype"] == "F32"
            and set(header) <= {"u", "v", "__metadata__"}
            and r == r2
            and min(l, d, r) > 0
            and ub - ua == l * r * 4
            and vb - va == d * r * 4
            and meta.get("family")
        )
    except (ValueError, KeyError, TypeError):
        fast = False
    if fast:
        body = memoryview(data)[8 + n :]
        return (
            name,
            meta["family"],
            l,
            d,
            r,
            meta.get("created_at", ""),
            meta.get("source", ""),
            body[ua:ub],
            body[va:vb],
        )
    t = task_from_bytes(data, name=name)
    return name, t.family, t.u.shape[0], t.v.shape[0], t.rank, t.created_at, t.source, to_blob(t.u), to_blob(t.v)
