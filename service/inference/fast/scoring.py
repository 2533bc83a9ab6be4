"""Candidate scoring: every candidate of a row against the row's encoder states, in one pass.

Layout: the rows' candidates padded to (R, C, m) (C candidates per row, m tokens each, dummy
candidates masked). The decoder input of every candidate starts with the start token, so
position 0 is identical for all candidates of a row: it is computed once per row. One row's
positions then are [start, cand_1[0..m-2], .., cand_C[0..m-2]] -> N = 1 + C(m-1) positions,
and every position-wise op (norms, projections, feed-forward, lm_head) runs on (R, N, d).
Cross-attention needs no gather either: a row's queries, of all its candidates, attend to
that row's K/V. Only the causal self-attention is per candidate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .cross import CrossAttention
from .encoder import Attend
from .ops import feed_forward, rms_norm
from .weights import T5Weights


def _self_attention(
    w: T5Weights, attend: Attend, qkv: torch.Tensor, C: int, m: int, bias: torch.Tensor
) -> torch.Tensor:
    """qkv (R, N, 3, H, dk) -> attention output (R, N, inner).

    Position 0 (the start token) attends only to itself: softmax over one key is exactly 1,
    so its output is its own value. Candidate positions 1..m-1 attend causally to the start
    token and to their own candidate's earlier tokens."""
    R, N = qkv.shape[:2]
    H, dk = w.heads, w.d_kv
    out0 = qkv[:, :1, 2].reshape(R, 1, H * dk)  # (R, 1, inner)
    if N == 1:
        return out0
    rest = qkv[:, 1:].reshape(R * C, m - 1, 3, H, dk).permute(2, 0, 3, 1, 4)  # (3, RC, H, m-1, dk)
    first = qkv[:, 0].permute(1, 0, 2, 3)[:, :, None]  # (3, R, 1, H, dk)
    first = first.expand(3, R, C, H, dk).reshape(3, R * C, H, 1, dk)
    k = torch.cat([first[1], rest[1]], dim=2)  # (RC, H, m, dk)
    v = torch.cat([first[2], rest[2]], dim=2)
    out = attend(rest[0], k, v, bias)  # (RC, m-1, inner)
    return torch.cat([out0, out.reshape(R, C * (m - 1), H * dk)], dim=1)


def score_rows(
    w: T5Weights,
    attend: Attend,
    cross: CrossAttention,
    self_bias: torch.Tensor,
    cand_ids: torch.Tensor,
    cand_mask: torch.Tensor,
) -> torch.Tensor:
    """Sum of token log-probabilities of each candidate.

    cross: the scored rows' cross-attention; self_bias (1, H, m, m) causal position bias;
    cand_ids/cand_mask (R, C, m) -> (R, C) float32.
    """
    R, C, m = cand_ids.shape
    dec_in = cand_ids[:, :, : m - 1].reshape(R, C * (m - 1))  # candidate tokens as inputs of positions 1..m-1
    start = torch.full((R, 1), w.start_id, dtype=torch.long, device=cand_ids.device)
    x = F.embedding(torch.cat([start, dec_in], dim=1), w.embed)  # (R, N, d)
    N = x.shape[1]
    bias = self_bias[:, :, 1:, :]  # (1, H, m-1, m): queries at 1..m-1
    for i, layer in enumerate(w.dec):
        qkv = F.linear(rms_norm(x, layer.ln_self, w.eps), layer.wqkv).view(R, N, 3, w.heads, w.d_kv)
        x = x + F.linear(_self_attention(w, attend, qkv, C, m, bias), layer.wo_self)
        q = F.linear(rms_norm(x, layer.ln_cross, w.eps), layer.wq_cross)  # (R, N, inner)
        x = x + F.linear(cross(i, q), layer.wo_cross)
        x = x + feed_forward(rms_norm(x, layer.ln_ff, w.eps), layer.ff)
    x = rms_norm(x, w.dec_final_ln, w.eps)
    if w.logit_scale is not None:
        x = x * w.logit_scale
    logits = F.linear(x, w.lm_head).float()  # (R, N, V)
    lse = torch.logsumexp(logits, dim=-1)  # (R, N); log p(token) = logit[token] - lse, no (R, N, V) log-softmax
    first = logits[:, 0].gather(-1, cand_ids[:, :, 0]) - lse[:, :1]  # (R, C): every candidate's first token
    rest = logits[:, 1:].gather(-1, cand_ids[:, :, 1:].reshape(R, C * (m - 1), 1)).view(R, C, m - 1)
    rest = rest - lse[:, 1:].view(R, C, m - 1)  # (R, C, m-1)
    tok = torch.cat([first[:, :, None], rest], dim=2)  # (R, C, m)
    return (tok * cand_mask.to(tok.dtype)).sum(-1)


def candidate_layout(
    row_index: torch.Tensor, cand_ids: torch.Tensor, cand_mask: torch.Tensor, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(P,) pair rows + (P, m) candidates -> the (R, C, m) layout of :func:`score_rows`.

    Returns rows (R,) the scored batch rows (sorted), and for each pair its row's place in ``rows``
    and its slot among that row's candidates (both (P,), so ``scores[pair_row, pair_slot]`` puts
    the (R, C) scores back in pair order), and ids/mask (R, C, m) with masked dummy candidates
    where a row has fewer than C."""
    P, m = cand_ids.shape
    rows, pair_row = torch.unique(row_index, return_inverse=True)
    R = rows.shape[0]
    counts = torch.bincount(pair_row, minlength=R)  # (R,) candidates per row
    order = torch.argsort(pair_row, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    pair_slot = torch.empty_like(pair_row)
    pair_slot[order] = torch.arange(P, device=row_index.device) - starts[pair_row[order]]
    C = int(counts.max())
    ids = cand_ids.new_full((R, C, m), pad_id)
    msk = cand_mask.new_zeros((R, C, m))
    ids[pair_row, pair_slot] = cand_ids
    msk[pair_row, pair_slot] = cand_mask
    return rows, pair_row, pair_slot, ids, msk
