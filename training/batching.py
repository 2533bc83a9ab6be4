"""Tokenising rows of examples into padded tensors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .sampler import Row


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, n)
    attention_mask: torch.Tensor  # (B, n)
    labels: torch.Tensor  # (B, m), -100 on padding
    task: torch.Tensor  # (B,) index into the trainer's task list


class Collator:
    def __init__(self, tokenizer, device: torch.device, max_input_tokens: int = 256, max_target_tokens: int = 32):
        self.tokenizer, self.device = tokenizer, device
        self.max_input_tokens, self.max_target_tokens = max_input_tokens, max_target_tokens

    def inputs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_input_tokens, return_tensors="pt"
        )
        return enc.input_ids.to(self.device), enc.attention_mask.to(self.device)

    def targets(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Target ids (ending in EOS) right-padded with pad, and their mask."""
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_target_tokens, return_tensors="pt"
        )
        return enc.input_ids.to(self.device), enc.attention_mask.to(self.device)

    def __call__(self, rows: Sequence[Row]) -> Batch:
        ids, mask = self.inputs([r.example.input for r in rows])
        target_ids, target_mask = self.targets([r.example.target for r in rows])
        labels = target_ids.masked_fill(target_mask == 0, -100)
        task = torch.tensor([r.task for r in rows], dtype=torch.long, device=self.device)
        return Batch(ids, mask, labels, task)
