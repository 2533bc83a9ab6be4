"""Tokenising rows of examples into padded tensors.

A run samples the same examples again and again (a job: 16 examples, 100 steps of 8), so each
distinct text is tokenised once and its ids are kept (a bounded cache); a batch is padded from the
cached ids on the host and reaches the device in one copy, without waiting for the device. The
tensors are exactly those of the tokenizer called on the batch (``padding=True, truncation=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .sampler import Row

CACHE_TEXTS = 16384  # distinct texts kept per side (inputs, targets); a text past it is tokenised again


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, n)
    attention_mask: torch.Tensor  # (B, n)
    labels: torch.Tensor  # (B, m), -100 on padding
    task: torch.Tensor  # (B,) index into the trainer's task list, on the device
    task_host: torch.Tensor  # (B,) the same on the host: PromptParams reads it without a device sync


class TokenCache:
    """The ids of each text, truncated to ``max_length``, tokenised once (first in, first out past ``size``)."""

    def __init__(self, tokenizer, max_length: int, size: int = CACHE_TEXTS):
        self.tokenizer, self.max_length, self.size = tokenizer, max_length, size
        self.ids: dict[str, list[int]] = {}

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        out = [self.ids.get(t) for t in texts]
        missing = list(dict.fromkeys(t for t, ids in zip(texts, out) if ids is None))
        if not missing:
            return out
        fresh = dict(zip(missing, self.tokenizer(missing, truncation=True, max_length=self.max_length)["input_ids"]))
        for text, ids in fresh.items():
            if len(self.ids) >= self.size:
                del self.ids[next(iter(self.ids))]
            self.ids[text] = ids
        return [fresh[t] if ids is None else ids for t, ids in zip(texts, out)]


def pad(seqs: list[list[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids (B, n) padded to the longest with ``pad_id`` (on the left when ``left``) and their mask."""
    n = max((len(s) for s in seqs), default=0)
    if left:
        ids = [[pad_id] * (n - len(s)) + s for s in seqs]
        mask = [[0] * (n - len(s)) + [1] * len(s) for s in seqs]
    else:
        ids = [s + [pad_id] * (n - len(s)) for s in seqs]
        mask = [[1] * len(s) + [0] * (n - len(s)) for s in seqs]
    return torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)


def to_device(device: torch.device, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """Host tensors (long) on ``device`` in one copy that does not wait for the device."""
    if device.type == "cpu":
        return list(tensors)
    flat = torch.cat([t.reshape(-1) for t in tensors]).to(device, non_blocking=True)
    return [part.view(t.shape) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors)]


class Collator:
    def __init__(self, tokenizer, device: torch.device, max_input_tokens: int = 256, max_target_tokens: int = 32):
        self.tokenizer, self.device = tokenizer, torch.device(device)
        self.max_input_tokens, self.max_target_tokens = max_input_tokens, max_target_tokens
        self.pad_id, self.left = tokenizer.pad_token_id, tokenizer.padding_side == "left"
        self.input_ids, self.target_ids = (
            TokenCache(tokenizer, max_input_tokens),
            TokenCache(tokenizer, max_target_tokens),
        )

    def inputs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Input ids (B, n) and mask, padded to the longest, on the device."""
        ids, mask = to_device(self.device, *pad(self.input_ids(texts), self.pad_id, self.left))
        return ids, mask

    def targets(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Target ids (ending in EOS) padded with pad, and their mask, on the device."""
        ids, mask = to_device(self.device, *pad(self.target_ids(texts), self.pad_id, self.left))
        return ids, mask

    def __call__(self, rows: Sequence[Row]) -> Batch:
        ids, mask = pad(self.input_ids([r.example.input for r in rows]), self.pad_id, self.left)
        target_ids, target_mask = pad(self.target_ids([r.example.target for r in rows]), self.pad_id, self.left)
        labels = target_ids.masked_fill(target_mask == 0, -100)
        task_host = torch.tensor([r.task for r in rows], dtype=torch.long)
        ids, mask, labels, task = to_device(self.device, ids, mask, labels, task_host)
        return Batch(ids, mask, labels, task, task_host)
