"""Training losses: the task loss and the two distillation terms of MPT.

L_total  = L_PLM + λ (L_logits + L_hidden)
L_PLM    = mean over target tokens of -log p_student(y_t | y_<t, x)
L_logits = mean over target tokens of KL( softmax(z_teacher / T) || softmax(z_student / T) )
L_hidden = mean over target tokens and features of (H_student - H_teacher)^2
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def plm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits (B, m, V), labels (B, m) with -100 on padding -> mean token cross-entropy."""
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)


def logits_kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL(teacher || student) at temperature T, averaged over positions where ``mask`` is 1."""
    log_s = F.log_softmax(student_logits.float() / temperature, dim=-1)  # (B, m, V)
    log_t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)  # (B, m)
    m = mask.to(kl.dtype)
    return (kl * m).sum() / m.sum().clamp(min=1)


def hidden_mse_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over masked positions (B, n) and all features of (B, n, d) states."""
    m = mask.to(torch.float32).unsqueeze(-1)  # (B, n, 1)
    sq = (student.float() - teacher.float()).pow(2) * m
    return sq.sum() / (m.sum() * student.shape[-1]).clamp(min=1)


@dataclass
class LossTerms:
    total: torch.Tensor
    plm: torch.Tensor
    logits: torch.Tensor
    hidden: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {k: float(getattr(self, k).detach()) for k in ("total", "plm", "logits", "hidden")}


def distillation_loss(plm: torch.Tensor, kd_logits: torch.Tensor, kd_hidden: torch.Tensor, lam: float) -> LossTerms:
    return LossTerms(plm + lam * (kd_logits + kd_hidden), plm, kd_logits, kd_hidden)
