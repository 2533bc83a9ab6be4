"""Compiled and CUDA-graphed runners, one per shape prepared at warm-up, with safe fallbacks.

Three functions of tensors only (so torch.compile sees a stable signature): the encoder stack,
one decoder step over a full static KV cache, and candidate scoring; each in an ``absorbed``
and a ``cached`` cross-attention variant. For every warmed-up shape :meth:`Prepared.prepare`
builds a :class:`StaticRunner` (compiled when compile is on; captured into a CUDA graph when the
batch is small enough), checks its output against the eager function on the same inputs, and
keeps it only if it matches. Any failure (compile error, capture error, mismatch) is logged and
that shape runs eagerly. The warm-up time budget (``max_compile_s``) bounds compiling: once it is
spent, further shapes are CUDA-graphed eager code (cheap to capture) instead of compiled ones
(listed under ``skipped`` in the report).
"""

from __future__ import annotations

import logging
import time

import torch

from .cross import CrossAttention
from .decoder import SelfCache, decoder_step
from .encoder import encoder_stack
from .options import FastOptions
from .scoring import score_rows
from .static import StaticRunner, raise_recompile_limit
from .weights import T5Weights

log = logging.getLogger("mpt.fast")


def _functions(w: T5Weights, attend) -> dict:
    def encoder(x, mbias, pos):  # (B, L, d), (B, 1, 1, L), (1, H, L, L) -> (B, L, d)
        return encoder_stack(w, x, (pos, mbias), attend)

    def step(tok, t, k_cache, v_cache, states, cross_bias, self_bias, k_cross=None, v_cross=None):
        kv = None if k_cross is None else (k_cross, v_cross)
        cross = CrossAttention(w, attend, states, cross_bias, kv)
        window = k_cache.shape[3]  # the whole cache: the causal bias masks what is not written yet
        return decoder_step(w, attend, tok, t, window, SelfCache(k_cache, v_cache), cross, self_bias)

    def score(states, cross_bias, self_bias, ids, msk, k_cross=None, v_cross=None):
        kv = None if k_cross is None else (k_cross, v_cross)
        return score_rows(w, attend, CrossAttention(w, attend, states, cross_bias, kv), self_bias, ids, msk)

    return {"encoder": encoder, "step": step, "score": score}


def _close(out: torch.Tensor, ref: torch.Tensor) -> bool:
    if out.dtype == torch.float32:
        return torch.allclose(out.float(), ref.float(), rtol=1e-4, atol=1e-3)
    scale = ref.float().abs().max().clamp_min(1.0)
    return bool(((out.float() - ref.float()).abs().max() <= 0.05 * scale).item())


class Prepared:
    def __init__(self, w: T5Weights, attend, options: FastOptions):
        self.w, self.options = w, options
        self.eager = _functions(w, attend)
        self.compiled = {}
        if options.compile != "off":
            raise_recompile_limit(64)
            mode = None if options.compile == "default" else options.compile
            self.compiled = {k: torch.compile(fn, mode=mode, dynamic=False) for k, fn in self.eager.items()}
        self.pool = torch.cuda.graph_pool_handle() if options.cuda_graphs else None
        self.runners: dict[tuple, StaticRunner] = {}
        self.report: dict = {"prepared": [], "failed": [], "skipped": [], "seconds": 0.0}
        self._spent = 0.0  # seconds preparing, all of it
        self._compile_spent = 0.0  # of which in shapes that compile: what max_compile_s bounds

    def get(self, key: tuple) -> StaticRunner | None:
        return self.runners.get(key)

    def prepare(self, key: tuple, example: dict[str, torch.Tensor]) -> bool:
        """Build the runner of ``key`` = (function name, *shape). False when it runs eagerly."""
        if key in self.runners:
            return True
        name, batch, opt = key[0], key[1], self.options
        graph = opt.cuda_graphs and batch <= opt.graph_max_batch
        compiled = self.compiled and name in opt.compile_parts and batch >= opt.compile_min_batch
        if compiled and self._compile_spent > opt.max_compile_s:  # budget spent: graph the eager code instead
            self.report["skipped"].append(str(key))
            compiled = False
        attempts = [(self.compiled[name], graph)] if compiled else []
        if graph or not compiled:  # graph the eager function (also when compiling failed), or plain buffers
            attempts.append((self.eager[name], graph))
        t0 = time.perf_counter()
        ref = self.eager[name](**{k: v.clone() for k, v in example.items()})
        for fn, as_graph in attempts:
            try:
                runner = StaticRunner(fn, example, as_graph, self.pool, {"k_cross": 1, "v_cross": 1})
                out = runner()
                if not _close(out, ref):
                    raise RuntimeError(f"output differs from the eager path by {(out - ref).abs().max().item():.3g}")
            except Exception as e:  # any failure means: this shape runs eagerly
                what = ("compiled " if fn is not self.eager[name] else "") + ("graph" if as_graph else "function")
                msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
                log.warning("fast path: %s for %s failed, falling back: %s", what, key, msg)
                self.report["failed"].append({"key": str(key), "what": what, "error": msg})
                continue
            self.runners[key] = runner
            took = time.perf_counter() - t0
            self.report["prepared"].append({"key": str(key), "compiled": fn is not self.eager[name],
                                            "graph": as_graph, "seconds": round(took, 2)})  # fmt: skip
            break
        self._spent += time.perf_counter() - t0
        if compiled:
            self._compile_spent += time.perf_counter() - t0
        self.report["seconds"] = round(self._spent, 2)
        return key in self.runners
