"""The reference path (``mpt_core.prompted`` over the Hugging Face forward) behind the fast
path's surface: what the fast path is checked against, and what serves if that check fails."""

from __future__ import annotations

import torch

from mpt_core import prompted


class Reference:
    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.pad_id = int(model.config.pad_token_id)

    def encode(self, prompts, input_ids, attention_mask) -> tuple[torch.Tensor, torch.Tensor]:
        return prompted.encode(self.model, prompts, input_ids, attention_mask)

    def generate(self, hidden: torch.Tensor, mask: torch.Tensor, limits: torch.Tensor) -> torch.Tensor:
        tokens = prompted.greedy_decode(self.model, hidden, mask, int(limits.max()))  # (B, T)
        past = torch.arange(tokens.shape[1], device=tokens.device)[None, :] >= limits[:, None]
        return tokens.masked_fill(past, self.pad_id)  # greedy is row-wise: trimming a row changes no other

    def score(self, hidden, mask, row_index, cand_ids, cand_mask) -> torch.Tensor:
        return prompted.score_candidates(self.model, hidden, mask, row_index, cand_ids, cand_mask)
