"""The numerical pieces of the T5 forward, written to give the Hugging Face modules' numbers.

rms_norm      T5LayerNorm: no mean, no bias, variance in fp32, cast to a half weight's dtype
feed_forward  T5LayerFF's DenseReluDense (relu) or gated variant (act(x W0) * x W1)
attend        softmax(q kᵀ + bias) v with NO 1/sqrt(d_kv) scaling (T5 folds it into the weights)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .weights import FeedForward

HALF = (torch.float16, torch.bfloat16)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """(..., d) -> (..., d), T5LayerNorm's result: torch's fused kernel when input and weight share a
    dtype (bit-identical to T5LayerNorm's ops in fp32, measured), else T5LayerNorm's own op order."""
    if x.dtype == weight.dtype:
        return torch.rms_norm(x, (x.shape[-1],), weight, eps)
    variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)  # (..., 1)
    x = x * torch.rsqrt(variance + eps)
    if weight.dtype in HALF:
        x = x.to(weight.dtype)
    return weight * x


def feed_forward(x: torch.Tensor, ff: FeedForward) -> torch.Tensor:
    """(..., d) -> (..., d)."""
    h = F.linear(x, ff.wi)  # (..., f) or (..., 2f)
    if ff.gated:
        gate, lin = h.chunk(2, dim=-1)
        h = ff.act(gate) * lin
    elif ff.relu:
        h = h.relu_()
    else:
        h = ff.act(h)
    if h.dtype != ff.wo.dtype:  # HF keeps ``wo`` in fp32 for half models (_keep_in_fp32_modules)
        h = h.to(ff.wo.dtype)
    return F.linear(h, ff.wo)


def attend_eager(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias) -> torch.Tensor:
    """q (B, H, Lq, dk), k/v (B, H, Lk, dk), bias: a tensor broadcastable to (B, H, Lq, Lk), or a
    tuple of them (e.g. the (1, H, L, L) position bias and the (B, 1, 1, L) mask: added one after
    the other in place, which costs less than reading one materialised (B, H, L, L) sum)
    -> (B, Lq, H·dk)."""
    scores = torch.matmul(q, k.transpose(-1, -2))  # (B, H, Lq, Lk), a fresh tensor: add in place
    for b in bias if isinstance(bias, tuple) else (bias,):
        scores += b
    probs = torch.softmax(scores, dim=-1)
    out = torch.matmul(probs, v)  # (B, H, Lq, dk)
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)


def attend_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias) -> torch.Tensor:
    """The same through F.scaled_dot_product_attention (the bias as a float mask, scale=1)."""
    if isinstance(bias, tuple):
        bias = sum(bias[1:], bias[0])
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=1.0)  # (B, H, Lq, dk)
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)


ATTEND = {"eager": attend_eager, "sdpa": attend_sdpa}


def mask_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, Lk) 1/0 attention mask -> (B, 1, 1, Lk) additive bias: 0 where attended, dtype's min elsewhere."""
    neg = torch.finfo(dtype).min
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(mask == 0, neg)[:, None, None, :]
