"""One decoder step over a static KV cache, and the greedy loop that drives it.

The self-attention cache is preallocated, (layers, B, H, T, dk) for K and for V, and written
in place at step t (no concatenation per step); cross-attention reads the batch's encoder
states through ``cross.CrossAttention`` (K/V computed once per batch, or absorbed). The loop
stops as soon as every row has produced EOS or reached its own token limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .cross import CrossAttention
from .encoder import Attend
from .ops import feed_forward, rms_norm
from .weights import T5Weights


@dataclass
class SelfCache:
    k: torch.Tensor  # (layers, B, H, T, dk)
    v: torch.Tensor  # (layers, B, H, T, dk)

    @classmethod
    def empty(cls, w: T5Weights, batch: int, steps: int, dtype: torch.dtype) -> SelfCache:
        shape = (len(w.dec), batch, w.heads, steps, w.d_kv)
        return cls(torch.zeros(shape, dtype=dtype, device=w.device), torch.zeros(shape, dtype=dtype, device=w.device))


def decoder_step(
    w: T5Weights,
    attend: Attend,
    tok: torch.Tensor,
    t: torch.Tensor,
    window: int,
    cache: SelfCache,
    cross: CrossAttention,
    self_bias: torch.Tensor,
) -> torch.Tensor:
    """Logits (B, V) of the next token.

    tok (B,) current input tokens; t (1,) long, their position; window: keys 0..window-1 are read
    (t + 1 in eager mode; the whole cache when shapes must be static: the causal bias masks the
    rest); cross: the batch's cross-attention; self_bias (1, H, T, T) causal position bias.
    """
    B = tok.shape[0]
    x = F.embedding(tok, w.embed)[:, None]  # (B, 1, d)
    bias_t = self_bias.index_select(2, t)[..., :window]  # (1, H, 1, window)
    for i, layer in enumerate(w.dec):
        qkv = F.linear(rms_norm(x, layer.ln_self, w.eps), layer.wqkv).view(B, 3, w.heads, 1, w.d_kv)
        cache.k[i].index_copy_(2, t, qkv[:, 1])  # (B, H, 1, dk) into (B, H, T, dk) at t
        cache.v[i].index_copy_(2, t, qkv[:, 2])
        a = attend(qkv[:, 0], cache.k[i][:, :, :window], cache.v[i][:, :, :window], bias_t)  # (B, 1, inner)
        x = x + F.linear(a, layer.wo_self)
        q = F.linear(rms_norm(x, layer.ln_cross, w.eps), layer.wq_cross)  # (B, 1, inner)
        x = x + F.linear(cross(i, q), layer.wo_cross)
        x = x + feed_forward(rms_norm(x, layer.ln_ff, w.eps), layer.ff)
    x = rms_norm(x, w.dec_final_ln, w.eps)
    if w.logit_scale is not None:
        x = x * w.logit_scale
    return F.linear(x[:, 0], w.lm_head)  # (B, V)


Step = Callable[[torch.Tensor, int], torch.Tensor]  # (tok (B,), t) -> logits (B, V)


def greedy(w: T5Weights, step: Step, limits: torch.Tensor) -> torch.Tensor:
    """Greedy decoding; limits (B,) long on the device, each row's max new tokens.

    Returns (B, T) token ids, T <= max(limits), pad after a row's EOS and past its limit."""
    B, T = limits.shape[0], int(limits.max()) if limits.numel() else 0
    out = torch.full((B, max(T, 0)), w.pad_id, dtype=torch.long, device=limits.device)
    finished = limits <= 0
    tok = torch.full((B,), w.start_id, dtype=torch.long, device=limits.device)
    for t in range(T):
        nxt = step(tok, t).argmax(-1).masked_fill_(finished, w.pad_id)  # (B,)
        out[:, t] = nxt
        finished |= (nxt == w.eos_id) | (limits <= t + 1)
        if bool(finished.all()):
            return out[:, : t + 1]
        tok = nxt
    return out
