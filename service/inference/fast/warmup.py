"""Warm-up of the fast path before the server reports ready: check it against the reference path
(once, on a small random batch), then prepare the compiled / graphed runners of the shapes the
server expects, then run every shape once end to end."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence

import torch

from .static import bucket, round_up, steps_bucket

log = logging.getLogger("mpt.fast")


def verify(fast) -> dict:
    """Fast vs reference path on 3 random inputs: encoder states, greedy ids (fp32), candidate
    scores. On a mismatch the fast path is switched off (``fast.use_reference``) and an error logged:
    a transformers release whose T5 differs from what the fast path assumes is served slowly, not wrongly."""
    w, dev = fast.w, fast.device
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([5, 3, 4])
    ids = torch.randint(3, w.embed.shape[0], (3, 5), generator=g).masked_fill(torch.arange(5) >= lengths[:, None], 0)
    mask = (torch.arange(5) < lengths[:, None]).long()
    prompts = torch.randn(3, 4, w.d, generator=g)
    cands = torch.randint(3, w.embed.shape[0], (6, 3), generator=g)
    cands[:, -1] = w.eos_id
    rows, cmask = torch.arange(3).repeat_interleave(2), torch.ones_like(cands)
    ids, mask, prompts, cands, rows, cmask = (t.to(dev) for t in (ids, mask, prompts, cands, rows, cmask))
    with torch.inference_mode():
        state = fast.encode(prompts, ids, mask)
        ref_hidden, ref_mask = fast.reference.encode(prompts.to(fast.dtype), ids, mask)
        ours, theirs = (
            fast.generate(state, 3),
            fast.reference.generate(ref_hidden, ref_mask, torch.full((3,), 3, device=dev)),
        )
        s_ours = fast.score(state, rows, cands, cmask)
        s_ref = fast.reference.score(ref_hidden, ref_mask, rows, cands, cmask)
    exact = fast.dtype == torch.float32
    hidden_err = (state.hidden.float() - ref_hidden.float()).abs().max().item()
    score_err = (s_ours - s_ref).abs().max().item()
    h_scale, s_scale = max(1.0, ref_hidden.float().abs().max().item()), s_ref.abs().max().item()
    # fp32: rounding only. Half precision: kernels round differently layer after layer; a structural
    # mismatch (scaling, activation, bias) is off by O(1) relative, far outside these bounds
    tol_h, tol_s = (1e-3, 1e-3 + 1e-4 * s_scale) if exact else (0.1 * h_scale, 0.5 + 0.05 * s_scale)
    ok = hidden_err <= tol_h and score_err <= tol_s
    width = max(ours.shape[1], theirs.shape[1])
    same_ids = torch.equal(
        torch.nn.functional.pad(ours, (0, width - ours.shape[1])),
        torch.nn.functional.pad(theirs.to(ours.device), (0, width - theirs.shape[1])),
    )
    ok = ok and (same_ids or not exact)
    result = {"ok": ok, "hidden_max_err": hidden_err, "score_max_err": score_err, "greedy_identical": same_ids}
    if not ok:
        fast.use_reference = True
        log.error("fast path disagrees with the reference path (%s): serving through the reference path", result)
    return result


def warm_up(
    fast,
    batches: Sequence[int],
    input_lens: Sequence[int],
    prompt_len: int,
    steps: Sequence[int] = (),
    candidates: Sequence[tuple[int, int]] = (),
    check: bool = True,
) -> dict:
    """Prepare (batch, input length) x (steps | candidates (C, m)) shapes; returns what was done.

    check: verify against the reference path first (when options.verify); a caller warming up
    several prompt lengths checks once."""
    t0 = time.perf_counter()
    report = {"verify": verify(fast) if check and fast.options.verify else None}
    w, dev, opt = fast.w, fast.device, fast.options
    shapes = sorted({(bucket(b, opt.batch_buckets), prompt_len + round_up(n, opt.length_step))
                     for b, n in itertools.product(batches, input_lens) if bucket(b, opt.batch_buckets)})  # fmt: skip
    prep = fast.prepared if not fast.use_reference else None
    if prep is not None:
        _prepare(fast, prep, shapes, steps, candidates)
        report["prepared"] = prep.report
    else:  # nothing is shape-specific (eager): one small pass warms the allocator and the bias cache
        batches, input_lens = sorted(batches)[:1], sorted(input_lens)[:1]
    with torch.inference_mode():  # every shape once end to end (biases cached, allocator warm)
        for b, n in itertools.product(batches, input_lens):
            state = fast.encode(torch.zeros(b, prompt_len, w.d, device=dev), torch.full((b, n), w.eos_id, device=dev),
                                torch.ones(b, n, dtype=torch.long, device=dev))  # fmt: skip
            for s in steps:
                fast.generate(state, s)
            for C, m in candidates:
                cand = torch.full((b * C, m), w.eos_id, device=dev)
                fast.score(state, torch.arange(b, device=dev).repeat_interleave(C), cand, torch.ones_like(cand))
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    report["seconds"] = round(time.perf_counter() - t0, 2)
    return report


@torch.inference_mode()  # as when serving: dynamo guards on it, and no autograd graph is traced
def _prepare(fast, prep, shapes, steps, candidates) -> None:
    w, dev, dt = fast.w, fast.device, fast.dtype
    rnd = lambda *s: torch.randn(*s, device=dev, dtype=dt)  # noqa: E731
    no_mask = lambda B, L: torch.zeros(B, 1, 1, L, device=dev, dtype=dt)  # noqa: E731

    def kv(B, L, absorbed):
        shape = (len(w.dec), B, w.heads, L, w.d_kv)
        return {} if absorbed else {"k_cross": rnd(*shape), "v_cross": rnd(*shape)}

    for B, L in sorted(shapes, key=lambda s: (-s[0], s[1])):  # largest batch first: its compile matters most
        ex = {"x": rnd(B, L, w.d), "mbias": no_mask(B, L), "pos": fast.encoder_position_bias(L)}
        prep.prepare(("encoder", B, L), ex)
    for (B, L), (C, m) in itertools.product(shapes, candidates):
        absorbed = fast.absorbed(1 + C * (m - 1), L)
        ids = torch.randint(0, w.embed.shape[0], (B, C, m), device=dev)
        ex = {"states": rnd(B, L, w.d), "cross_bias": no_mask(B, L), "self_bias": fast.causal_bias(m)}
        prep.prepare(
            ("score", B, C, m, L, absorbed), ex | {"ids": ids, "msk": torch.ones_like(ids)} | kv(B, L, absorbed)
        )
    for (B, L), n in itertools.product(shapes, steps):
        T = steps_bucket(n)
        absorbed = fast.absorbed(T, L)
        cache = torch.zeros(len(w.dec), B, w.heads, T, w.d_kv, device=dev, dtype=dt)
        ex = {"states": rnd(B, L, w.d), "cross_bias": no_mask(B, L), "self_bias": fast.causal_bias(T)}
        ex |= {"k_cache": cache, "v_cache": cache.clone(), "t": torch.zeros(1, dtype=torch.long, device=dev)}
        ex["tok"] = torch.full((B,), w.start_id, device=dev)
        prep.prepare(("step", B, L, T, absorbed), ex | kv(B, L, absorbed))
