"""Settings of the fast inference path, validated once when the engine builds it.

The server maps its ``MPT_FAST_*`` settings onto :class:`FastOptions`; the benchmark builds one
directly. ``auto`` values resolve per device (:meth:`FastOptions.resolved`): what measured
fastest on that device is the default, the alternatives stay selectable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

ATTENTION = ("auto", "eager", "sdpa")
CROSS = ("auto", "cached", "absorbed")
COMPILE = ("auto", "off", "default", "max-autotune-no-cudagraphs", "max-autotune")
SWITCH = ("auto", "on", "off")
DEFAULT_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass(frozen=True)
class FastOptions:
    """How the fast path runs. Static shapes (buckets) are what compiled code and CUDA graphs need:
    a batch pads up to the next batch bucket, its input length up to a multiple of ``length_step``,
    a generation's KV cache up to the next power of two; each such shape is compiled / captured at
    warm-up, and a shape never warmed up runs eagerly (no compile stall while serving)."""

    attention: str = "auto"  # eager | sdpa; auto: eager (measured faster on cpu; design §6: also on cuda)
    cross: str = "auto"  # cached K/V | absorbed; auto: whichever costs fewer flops for the call
    compile: str = "auto"  # off | a torch.compile mode; auto: default on cuda, off on cpu (no gain measured)
    compile_parts: tuple[str, ...] = ("encoder",)  # of encoder, step, score: where fusion pays for compile time
    compile_min_batch: int = 16  # smaller batches are launch-bound: a CUDA graph of the eager code does it
    cuda_graphs: bool = True  # capture encoder, decoder step and scoring for batches <= graph_max_batch
    graph_max_batch: int = 512
    static_shapes: str = "auto"  # on | off; auto: on when compile or CUDA graphs are on
    batch_buckets: tuple[int, ...] = DEFAULT_BATCH_BUCKETS
    length_step: int = 32  # input tokens (prompt excluded) pad up to a multiple of this under static shapes
    max_compile_s: float = 300.0  # warm-up stops compiling after this many seconds (further shapes: graphs only)
    pin_memory: bool = True  # inputs go host -> device through pinned memory, non-blocking (cuda)
    verify: bool = True  # warm-up checks the fast path against the reference path; on a mismatch it serves
    # through the reference path (slower, never wrong) and logs an error

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("attention", self.attention, ATTENTION),
            ("cross", self.cross, CROSS),
            ("compile", self.compile, COMPILE),
            ("static_shapes", self.static_shapes, SWITCH),
        ):
            if value not in allowed:
                raise ValueError(f"fast {name}={value!r} is not one of {', '.join(allowed)}")
        if set(self.compile_parts) - {"encoder", "step", "score"}:
            raise ValueError(f"compile_parts={self.compile_parts} may hold only encoder, step, score")
        if self.compile_min_batch < 1:
            raise ValueError(f"compile_min_batch={self.compile_min_batch} must be >= 1")
        if self.graph_max_batch < 0:
            raise ValueError(f"graph_max_batch={self.graph_max_batch} must be >= 0")
        buckets = tuple(self.batch_buckets)
        if not buckets or any(b < 1 for b in buckets) or list(buckets) != sorted(set(buckets)):
            raise ValueError(f"batch_buckets={self.batch_buckets} must be strictly increasing positive sizes")
        if self.length_step < 1:
            raise ValueError(f"length_step={self.length_step} must be >= 1")
        if self.max_compile_s <= 0:
            raise ValueError(f"max_compile_s={self.max_compile_s} must be > 0")

    def resolved(self, device: torch.device) -> FastOptions:
        """``auto`` replaced by the per-device default; graphs and pinning only where they exist."""
        cuda = device.type == "cuda"
        attention = self.attention if self.attention != "auto" else "eager"
        compile_mode = self.compile if self.compile != "auto" else ("default" if cuda else "off")
        graphs = self.cuda_graphs and cuda and self.graph_max_batch > 0
        static = self.static_shapes if self.static_shapes != "auto" else (
            "on" if compile_mode != "off" or graphs else "off"
        )  # fmt: skip
        return replace(
            self, attention=attention, compile=compile_mode, cuda_graphs=graphs, static_shapes=static,
            pin_memory=self.pin_memory and cuda,
        )  # fmt: skip

    @property
    def static(self) -> bool:
        return self.static_shapes == "on"
