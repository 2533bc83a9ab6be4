"""The load checks of a bulk read, vectorised over a chunk: the same for every backend.

Rows written through a store were validated then; these checks catch what changed behind its back
(a hand-edited directory, a damaged file or database) before a reader serves it.
"""

from __future__ import annotations

import torch

from .records import FamilyChunk, TaskChunk


def screen_tasks(chunk: TaskChunk, shapes: dict[str, tuple[int, int]]) -> TaskChunk:
    """Leave out rows with non-finite factors or whose family is unknown or of another (l, d);
    ``shapes`` maps each family to its (l, d). The rows left out are named in ``rejected``."""
    if len(chunk) == 0:
        return chunk
    keep = finite_rows(chunk.u) & finite_rows(chunk.v)  # (n,)
    reasons = {i: "factors hold non-finite values" for i in (~keep).nonzero().flatten().tolist()}
    for fam in set(chunk.families):
        shape = shapes.get(fam)
        if shape == (chunk.l, chunk.d):
            continue
        why = (
            f"family {fam!r} does not exist"
            if shape is None
            else f"family {fam!r} needs l={shape[0]}, d={shape[1]}; the task has l={chunk.l}, d={chunk.d}"
        )
        for i, f in enumerate(chunk.families):
            if f == fam:
                keep[i] = False
                reasons[i] = why
    if not reasons:
        return chunk
    for i, why in reasons.items():
        chunk.rejected[chunk.names[i]] = why
    return chunk.select(keep)


def screen_families(chunk: FamilyChunk) -> FamilyChunk:
    """Leave out families whose shared prompt holds non-finite values, naming them in ``rejected``."""
    if len(chunk) == 0:
        return chunk
    keep = finite_rows(chunk.shared)  # (n,)
    if bool(keep.all()):
        return chunk
    for i in (~keep).nonzero().flatten().tolist():
        chunk.rejected[chunk.names[i]] = "shared prompt holds non-finite values"
    return chunk.select(keep)


def finite_rows(x: torch.Tensor) -> torch.Tensor:
    """(n, ...) -> (n,) bool: rows whose values are all finite.

    A sum is NaN or infinite whenever a term is, so rows are summed first (far cheaper than
    ``isfinite`` over every value) and only rows whose sum is not finite are checked exactly
    (a finite row can overflow its sum).
    """
    flat = x.flatten(1)  # (n, k)
    if bool(torch.isfinite(flat.sum())):
        return torch.ones(flat.shape[0], dtype=torch.bool)
    ok = torch.isfinite(flat.sum(dim=1))  # (n,)
    suspects = (~ok).nonzero().flatten()
    if len(suspects):
        ok[suspects] = torch.isfinite(flat[suspects]).all(dim=1)
    return ok
