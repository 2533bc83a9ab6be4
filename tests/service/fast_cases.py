"""Shared inputs for the fast-path tests: models of several T5 variants and mixed-task batches
whose prompts come from a resident task table through the one ``compose_rows``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mpt_core import compose_rows

VARIANTS = {
    # original T5: relu feed-forward, tied embeddings (decoder output scaled by d ** -0.5)
    "relu-tied": dict(feed_forward_proj="relu", tie_word_embeddings=True),
    # T5 v1.1 / flan: gated-gelu feed-forward, untied head (no output scaling), deeper decoder
    "gated-untied": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False, num_decoder_layers=3),
}


def random_t5(variant: str, seed: int = 0, vocab: int = 300, d: int = 32, layers: int = 2):
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(
        vocab_size=vocab, d_model=d, d_kv=d // 4, d_ff=2 * d, num_layers=layers, num_heads=4, dropout_rate=0.0,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, relative_attention_num_buckets=8,
        relative_attention_max_distance=16, **VARIANTS[variant],
    )  # fmt: skip
    torch.manual_seed(seed)
    return T5ForConditionalGeneration(cfg).eval().requires_grad_(False)


@dataclass
class Batch:
    prompts: torch.Tensor  # (B, l, d)
    ids: torch.Tensor  # (B, n)
    mask: torch.Tensor  # (B, n)


def mixed_batch(d: int, lengths: list[int], vocab: int, l: int = 6, tasks: int = 3, seed: int = 1) -> Batch:
    """Rows of different lengths (right-padded once) and tasks (rank-1 and rank-2 factors)."""
    g = torch.Generator().manual_seed(seed)
    shared = torch.randn(1, l, d, generator=g)
    u = torch.zeros(tasks, l, 2)
    v = torch.zeros(tasks, d, 2)
    for k in range(tasks):  # task k has rank 1 + k % 2, zero-padded to 2 as the prompt table does
        r = 1 + k % 2
        u[k, :, :r] = 1 + 0.5 * torch.randn(l, r, generator=g)
        v[k, :, :r] = 1 + 0.5 * torch.randn(d, r, generator=g)
    task_index = torch.arange(len(lengths)) % tasks
    prompts = compose_rows(shared, u, v, torch.zeros_like(task_index), task_index)
    n = max(lengths)
    ids = torch.randint(3, vocab, (len(lengths), n), generator=g)
    mask = (torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]).long()
    return Batch(prompts, ids.masked_fill(mask == 0, 0), mask)


def candidates(rows: list[int], lengths: list[int], vocab: int, seed: int = 2, eos: int = 1):
    """(P,) rows, (P, m) candidate ids ending in EOS (right-padded), (P, m) mask. Candidates of a row
    share their first token when they are consecutive with equal lengths > 2."""
    g = torch.Generator().manual_seed(seed)
    m = max(lengths)
    ids = torch.zeros(len(rows), m, dtype=torch.long)
    mask = torch.zeros(len(rows), m, dtype=torch.long)
    for p, n in enumerate(lengths):
        ids[p, : n - 1] = torch.randint(3, vocab, (n - 1,), generator=g)
        ids[p, n - 1] = eos
        mask[p, :n] = 1
        if p and rows[p] == rows[p - 1] and n > 2 and lengths[p - 1] > 2:
            ids[p, 0] = ids[p - 1, 0]  # a shared first token
    return torch.tensor(rows), ids, mask
