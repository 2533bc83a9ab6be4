"""Trainable prompt parameters, one module for every method.

A family's shared prompt ``P*`` (l, d) plus rank-r factors per task ``u_k`` (l, r), ``v_k`` (d, r);
which of them train decides the method:

    method                 trains               trainable parameters (rank 1)
    vanilla PT / teacher   P*  (u, v = ones)    l·d
    MPT distillation       P*, u_k, v_k         l·d + (l + d)·K
    adapt factors          u, v                 l + d
    adapt full             P*, u, v             l·d + l + d
    adapt group (τ tasks)  P*, u_k, v_k         l·d + (l + d)·τ
"""

from __future__ import annotations

import torch
from torch import nn

from mpt_core import compose

from .config import INITS


def init_prompt(kind: str, length: int, embedding: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A fresh (l, d) prompt: uniform in [-0.5, 0.5] (``random``), or rows of the vocabulary
    embedding sampled from the 5000 lowest ids past the special tokens (``vocab``), as Lester et al."""
    d = embedding.shape[1]
    if kind == "random":
        return torch.rand(length, d, generator=generator) - 0.5
    if kind == "vocab":
        hi = min(embedding.shape[0], 5003)
        ids = torch.randint(3, hi, (length,), generator=generator)
        return embedding.detach().float().cpu()[ids].clone()
    raise ValueError(f"prompt init {kind!r} is not one of {INITS}")


class PromptParams(nn.Module):
    def __init__(
        self,
        shared: torch.Tensor,  # (l, d)
        u: torch.Tensor,  # (T, l, r)
        v: torch.Tensor,  # (T, d, r)
        train_shared: bool,
        train_factors: bool,
    ):
        super().__init__()
        if u.ndim != 3 or v.ndim != 3 or u.shape[0] != v.shape[0] or u.shape[2] != v.shape[2]:
            raise ValueError(f"factor shapes u {tuple(u.shape)}, v {tuple(v.shape)} do not form (T, l, r), (T, d, r)")
        if u.shape[1] != shared.shape[0] or v.shape[1] != shared.shape[1]:
            raise ValueError(f"factors u {tuple(u.shape)}, v {tuple(v.shape)} do not fit P* {tuple(shared.shape)}")
        self.shared = nn.Parameter(shared.detach().float().clone(), requires_grad=train_shared)
        # One parameter per task: tasks absent from a batch get no gradient, so Adam leaves them alone.
        self.u = nn.ParameterList(nn.Parameter(x.detach().float().clone(), requires_grad=train_factors) for x in u)
        self.v = nn.ParameterList(nn.Parameter(x.detach().float().clone(), requires_grad=train_factors) for x in v)

    @classmethod
    def with_ones(cls, shared: torch.Tensor, num_tasks: int, rank: int, train_shared: bool, train_factors: bool):
        l, d = shared.shape
        return cls(shared, torch.ones(num_tasks, l, rank), torch.ones(num_tasks, d, rank), train_shared, train_factors)

    def trainable_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def factors(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.u[k].detach().clone(), self.v[k].detach().clone()

    def task_prompt(self, k: int) -> torch.Tensor:
        """The composed (l, d) prompt of task k, detached."""
        return self.forward(torch.tensor([k]))[0].detach()

    def forward(self, task: torch.Tensor) -> torch.Tensor:
        """task: (B,) task indices -> (B, l, d) prompts. Give them on the host (Batch.task_host):
        which tasks a batch uses is read there, so indices on the device would cost a device sync."""
        used, slot = torch.unique(task.cpu(), return_inverse=True)
        u = torch.stack([self.u[i] for i in used.tolist()])  # (T_used, l, r)
        v = torch.stack([self.v[i] for i in used.tolist()])  # (T_used, d, r)
        slot = slot.to(self.shared.device, non_blocking=True)
        return compose(self.shared, u[slot], v[slot])
