"""T5's relative position bias, computed once per (kind, query length, key length) and cached.

The bucket function is Mesh TensorFlow's, as in Hugging Face's T5Attention: half the buckets
are exact offsets, the rest logarithmic up to ``max_distance``; the encoder is bidirectional,
the decoder sees only the past.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch


def relative_position_bucket(
    relative_position: torch.Tensor, bidirectional: bool, num_buckets: int, max_distance: int
) -> torch.Tensor:
    buckets = 0
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    large = max_exact + (
        torch.log(relative_position.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, relative_position, large)


def position_bias(
    table: torch.Tensor, q_len: int, k_len: int, bidirectional: bool, max_distance: int, q_offset: int = 0
) -> torch.Tensor:
    """table (num_buckets, H) -> (1, H, q_len, k_len) bias for queries at q_offset.. and keys at 0.."""
    ctx = torch.arange(q_len, dtype=torch.long, device=table.device)[:, None] + q_offset
    mem = torch.arange(k_len, dtype=torch.long, device=table.device)[None, :]
    bucket = relative_position_bucket(mem - ctx, bidirectional, table.shape[0], max_distance)  # (q, k)
    return table[bucket].permute(2, 0, 1).unsqueeze(0)  # (1, H, q, k)


def causal_bias(table: torch.Tensor, length: int, max_distance: int) -> torch.Tensor:
    """Decoder self-attention bias with the causal mask folded in: (1, H, length, length), the dtype's
    min where a key lies in the query's future (exp() of it is exactly 0 after the max-shift)."""
    bias = position_bias(table, length, length, False, max_distance)
    future = torch.ones(length, length, dtype=torch.bool, device=table.device).triu(1)
    return bias.masked_fill(future, torch.finfo(bias.dtype).min)


class BiasCache:
    """Biases by shape, least recently used evicted past ``size`` entries (lengths vary per batch)."""

    def __init__(self, size: int = 64):
        self.size = size
        self._cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def get(self, key: tuple, make) -> torch.Tensor:
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = make()
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return hit
