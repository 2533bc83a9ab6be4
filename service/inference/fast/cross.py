"""Cross-attention of a few decoder queries over the encoder states, two ways.

    cached    K = X Wkᵀ, V = X Wvᵀ for every encoder position, once per batch (encoder.cross_kv);
              each query then costs 4·L·inner flops
    absorbed  scores = (q Wk) Xᵀ and out = (softmax · X) Wvᵀ per head: no K/V at all; each query
              costs 4·inner·d + 4·H·L·d flops, so it wins while the number of queries is small
              (label scoring, short generations): for T5-small at L = 115 below ~44 queries

Both are softmax(q kᵀ + mask) v exactly in real arithmetic; in floating point they differ by
rounding only (~1e-6 relative in fp32).
"""

from __future__ import annotations

import torch

from .weights import T5Weights


def absorbed_wins(w: T5Weights, queries: int, length: int) -> bool:
    """Fewer flops without K/V for ``queries`` decoder positions per row over ``length`` encoder states."""
    cached = length * w.d * w.inner
    absorbed = queries * (w.inner * w.d + w.heads * length * w.d - length * w.inner)
    return absorbed < cached


def cross_absorbed(w: T5Weights, i: int, q: torch.Tensor, states: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Decoder layer i: q (B, Q, inner) queries, states (B, L, d) encoder output, bias (B, 1, 1, L)
    -> (B, Q, inner)."""
    B, Q, _ = q.shape
    H, dk, d = w.heads, w.d_kv, w.d
    wk, wv = w.dec[i].wk_cross, w.dec[i].wv_cross  # (H, dk, d) each
    qh = q.reshape(B * Q, H, dk).transpose(0, 1)  # (H, BQ, dk)
    qt = torch.bmm(qh, wk).view(H, B, Q, d).transpose(0, 1).reshape(B, H * Q, d)  # (B, HQ, d) = q_h Wk_h
    scores = torch.baddbmm(bias[:, 0], qt, states.transpose(1, 2))  # (B, HQ, L)
    ctx = torch.bmm(torch.softmax(scores, dim=-1), states)  # (B, HQ, d)
    ctx = ctx.view(B, H, Q, d).transpose(0, 1).reshape(H, B * Q, d)  # (H, BQ, d)
    out = torch.bmm(ctx, wv.transpose(1, 2))  # (H, BQ, dk)
    return out.transpose(0, 1).reshape(B, Q, H * dk)


class CrossAttention:
    """Every decoder layer's cross-attention for one batch: ``self(i, q)`` with q (B, Q, inner)."""

    def __init__(self, w: T5Weights, attend, states: torch.Tensor, bias: torch.Tensor, kv=None):
        self.w, self.attend, self.states, self.bias = w, attend, states, bias
        self.kv = kv  # (K, V), each (layers, B, H, L, dk): the cached mode; None: absorbed

    def __call__(self, i: int, q: torch.Tensor) -> torch.Tensor:
        if self.kv is None:
            return cross_absorbed(self.w, i, q, self.states, self.bias)
        B, Q, _ = q.shape
        q = q.view(B, Q, self.w.heads, self.w.d_kv).transpose(1, 2)  # (B, H, Q, dk)
        return self.attend(q, self.kv[0][i], self.kv[1][i], self.bias)
