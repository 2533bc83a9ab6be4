"""The one definition of a task prompt and of how it enters the backbone.

    P_k = P* ∘ (u_k v_kᵀ)                    (Hadamard product, rank r >= 1)

The prompt is prepended to the encoder's input embeddings and the attention mask is extended
with ones; the decoder is not prefixed. Training and serving both call these functions.
"""

from __future__ import annotations

import torch


def compose(shared: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Task prompts for a batch, one row per example, no Python loop over rows.

    shared: (B, l, d), or (l, d) broadcast to every row
    u:      (B, l, r)
    v:      (B, d, r)
    returns (B, l, d)

    Rows of different ranks can share a batch: pad u and v with zero columns up to the largest
    rank, and the zero columns add nothing to ``u @ v.T``.
    """
    return shared * torch.bmm(u, v.transpose(1, 2))  # (B, l, r) @ (B, r, d) -> (B, l, d)


def compose_rows(
    shared_table: torch.Tensor,
    u_table: torch.Tensor,
    v_table: torch.Tensor,
    family_index: torch.Tensor,
    task_index: torch.Tensor,
) -> torch.Tensor:
    """Gather each row's family and task from resident tables, then :func:`compose`.

    shared_table: (F, l, d)   one shared prompt per family slot
    u_table:      (S, l, r)   one u per task slot (zero-padded to the table's rank)
    v_table:      (S, d, r)
    family_index: (B,) long   family slot of each row
    task_index:   (B,) long   task slot of each row
    returns       (B, l, d)
    """
    return compose(shared_table[family_index], u_table[task_index], v_table[task_index])


def inject(
    prompts: torch.Tensor, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prepend prompts to the encoder input and extend its attention mask with ones.

    prompts:        (B, l, d)
    inputs_embeds:  (B, n, d)
    attention_mask: (B, n)
    returns         (B, l + n, d), (B, l + n)
    """
    if prompts.shape[0] != inputs_embeds.shape[0] or prompts.shape[2] != inputs_embeds.shape[2]:
        raise ValueError(f"prompts {tuple(prompts.shape)} do not fit inputs {tuple(inputs_embeds.shape)}")
    ones = attention_mask.new_ones(prompts.shape[0], prompts.shape[1])  # (B, l)
    embeds = torch.cat([prompts.to(inputs_embeds.dtype), inputs_embeds], dim=1)
    return embeds, torch.cat([ones, attention_mask], dim=1)
