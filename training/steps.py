"""Per-step loss functions: the task loss, and the joint teacher/student distillation step."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mpt_core.backbone import Backbone
from mpt_core.prompted import prompted_forward

from .config import HIDDEN_CHOICES
from .data.batching import Collator
from .data.sampler import Row
from .loop import LossFn
from .losses import distillation_loss, hidden_mse_loss, logits_kd_loss, plm_loss
from .prompt_params import PromptParams


def task_loss(backbone: Backbone, params: PromptParams, collator: Collator) -> LossFn:
    """L_PLM of the prompts in ``params`` on a batch of rows."""

    def step(rows: Sequence[Row]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        b = collator(rows)
        out = prompted_forward(backbone.model, params(b.task_host), b.input_ids, b.attention_mask, b.labels)
        loss = plm_loss(out.logits, b.labels)
        return loss, {"plm": loss.detach()}

    return step


def distill_loss(
    backbone: Backbone,
    student: PromptParams,
    teachers: torch.Tensor | None,  # (K, l, d) teacher prompts, row k for task k; None = no distillation
    collator: Collator,
    lam: float,
    temperature: float,
    hidden: str = "decoder",
) -> LossFn:
    """L_PLM + λ(L_logits + L_hidden), teacher and student rows in one forward of 2B rows."""
    if hidden not in HIDDEN_CHOICES:
        raise ValueError(f"hidden={hidden!r} must be one of {HIDDEN_CHOICES}")
    if teachers is None:
        return task_loss(backbone, student, collator)

    def step(rows: Sequence[Row]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        b = collator(rows)
        n = b.input_ids.shape[0]
        prompts = torch.cat([student(b.task_host), teachers[b.task]])  # (2B, l, d): student rows, then teacher rows
        twice = lambda x: torch.cat([x, x])  # noqa: E731
        out = prompted_forward(
            backbone.model,
            prompts,
            twice(b.input_ids),
            twice(b.attention_mask),
            twice(b.labels),
            output_hidden_states=True,
        )
        s_logits, t_logits = out.logits[:n], out.logits[n:].detach()
        target_mask = b.labels != -100  # (B, m)
        l_plm = plm_loss(s_logits, b.labels)
        l_logits = logits_kd_loss(s_logits, t_logits, target_mask, temperature)
        l_hidden = s_logits.new_zeros(())
        if hidden in ("decoder", "both"):
            h = out.decoder_hidden_states[-1]  # (2B, m, d), after the final layer norm
            l_hidden = l_hidden + hidden_mse_loss(h[:n], h[n:].detach(), target_mask)
        if hidden in ("encoder", "both"):
            h = out.encoder_last_hidden_state  # (2B, l + n_in, d)
            enc_mask = torch.cat([b.attention_mask.new_ones(n, prompts.shape[1]), b.attention_mask], dim=1)
            l_hidden = l_hidden + hidden_mse_loss(h[:n], h[n:].detach(), enc_mask)
        terms = distillation_loss(l_plm, l_logits, l_hidden, lam)
        return terms.total, {
            "plm": terms.plm.detach(),
            "logits": terms.logits.detach(),
            "hidden": terms.hidden.detach(),
        }

    return step
