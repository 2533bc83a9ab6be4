"""The T5 encoder over prompted inputs, and every decoder layer's cross-attention K/V.

The prompt enters through ``mpt_core.compose.inject`` (the one definition of injection).
The position bias and the padding mask are added once into one (B, H, L, L) bias that every
layer shares; q, k and v come from one fused projection per layer; the cross-attention K/V of
all decoder layers come from one matmul over the encoder states.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from mpt_core.compose import inject

from .ops import feed_forward, rms_norm
from .weights import T5Weights

Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def embed_prompted(
    w: T5Weights, prompts: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """prompts (B, l, d), ids/mask (B, n) -> embeddings (B, l + n, d), mask (B, l + n)."""
    return inject(prompts, F.embedding(input_ids, w.embed), attention_mask)


def encoder_stack(w: T5Weights, x: torch.Tensor, bias, attend: Attend) -> torch.Tensor:
    """x (B, L, d) input embeddings, bias: position bias + mask, summed (B, H, L, L) or as a tuple
    ((1, H, L, L), (B, 1, 1, L)) -> hidden (B, L, d)."""
    B, L, _ = x.shape
    for layer in w.enc:
        h = rms_norm(x, layer.ln_attn, w.eps)
        qkv = F.linear(h, layer.wqkv).view(B, L, 3, w.heads, w.d_kv).permute(2, 0, 3, 1, 4)  # (3, B, H, L, dk)
        x = x + F.linear(attend(qkv[0], qkv[1], qkv[2], bias), layer.wo)  # a new tensor: the caller's x is kept
        ff = feed_forward(rms_norm(x, layer.ln_ff, w.eps), layer.ff)
        x = x + ff if ff.dtype != x.dtype else x.add_(ff)  # an fp32 ``wo`` promotes the stream, as in HF
    return rms_norm(x, w.enc_final_ln, w.eps)


def encoder_bias(position: torch.Tensor, mbias: torch.Tensor, padded: bool, summed: bool):
    """The bias every encoder layer adds: the (1, H, L, L) position bias alone when no row is padded;
    else with the (B, 1, 1, L) mask, as one (B, H, L, L) sum (for kernels taking one mask: once per
    batch, not per layer) or as a pair (added in place one after the other)."""
    if not padded:
        return position
    return position + mbias if summed else (position, mbias)


def cross_kv(w: T5Weights, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden (B, L, d) -> K, V (layers, B, H, L, dk), contiguous: read at every decoder step."""
    B, L, _ = hidden.shape
    kv = F.linear(hidden, w.cross_kv).view(B, L, len(w.dec), 2, w.heads, w.d_kv)
    kv = kv.permute(3, 2, 0, 4, 1, 5).contiguous()  # (2, layers, B, H, L, dk)
    return kv[0], kv[1]
