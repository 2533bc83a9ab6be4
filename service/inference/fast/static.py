"""Fixed-shape execution: buckets, and runners over preallocated buffers that torch.compile'd
code and CUDA graphs need.

A :class:`StaticRunner` owns one buffer per input; callers copy inputs in (``load``) and call it.
On cuda with ``graph=True`` the call replays a CUDA graph captured once (inputs are read from,
and the output written to, the same memory every time); otherwise it calls the function on the
buffers, which is the same plumbing and is what the CPU tests exercise.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable

import torch

log = logging.getLogger("mpt.fast")


def bucket(n: int, buckets: tuple[int, ...]) -> int | None:
    """The smallest bucket >= n, or None when n exceeds them all."""
    i = bisect.bisect_left(buckets, n)
    return buckets[i] if i < len(buckets) else None


def round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def steps_bucket(n: int) -> int:
    """KV-cache length for n new tokens: the next power of two, at least 4."""
    return max(4, 1 << (max(n, 1) - 1).bit_length())


def pad_rows(t: torch.Tensor, rows: int, value: float = 0) -> torch.Tensor:
    """t (B, ...) -> (rows, ...) with ``value`` in the added rows."""
    if t.shape[0] == rows:
        return t
    out = t.new_full((rows, *t.shape[1:]), value)
    out[: t.shape[0]] = t
    return out


def raise_recompile_limit(n: int) -> None:
    """Let dynamo keep one compiled graph per prepared shape (its default stops at 8)."""
    import torch._dynamo.config as cfg

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(cfg, name):
            setattr(cfg, name, max(getattr(cfg, name), n))


class StaticRunner:
    def __init__(
        self,
        fn: Callable[..., torch.Tensor],
        example: dict[str, torch.Tensor],
        graph: bool,
        pool=None,
        batch_dims: dict[str, int] | None = None,
    ):
        self.fn = fn
        self.batch_dims = batch_dims or {}  # buffers whose batch dimension is not the first
        self.buffers = {k: v.clone() for k, v in example.items()}
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out: torch.Tensor | None = None
        if graph:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up off the capture: allocator, cuBLAS workspaces, autotuning
                for _ in range(2):
                    fn(**self.buffers)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, pool=pool):
                self.out = fn(**self.buffers)

    def load(self, **inputs: torch.Tensor) -> None:
        """Copy inputs into the buffers; a smaller batch fills the leading rows."""
        for name, t in inputs.items():
            dim = self.batch_dims.get(name, 0)
            self.buffers[name].narrow(dim, 0, t.shape[dim]).copy_(t, non_blocking=True)

    def __call__(self) -> torch.Tensor:
        if self.graph is not None:
            self.graph.replay()
            return self.out
        return self.fn(**self.buffers)
