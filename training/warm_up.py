"""One throwaway training step and evaluation on a made-up task, before a worker takes its first job.

A process's first step pays one-time costs that have nothing to do with the job: on a GPU the
kernels of the forward, backward, optimizer and greedy decoding are loaded at their first use and
cuBLAS sets up its handles and workspaces (about a second for the demo backbone: the first job of
a fresh worker took 4.3 s where the next took 3.3 s). Paying them before the first claim keeps them
out of every job's time. Nothing here touches a store, the torch random generators or the backbone
(frozen, and only read), so no job's numbers change.
"""

from __future__ import annotations

import time

import torch

from mpt_core.backbone import Backbone

from .config import TrainConfig
from .data.batching import Collator
from .data.examples import Example, TaskData
from .data.sampler import Row
from .evaluate import evaluate_prompt
from .loop import make_optimizer
from .prompt_params import PromptParams
from .steps import task_loss

EXAMPLES = (Example("a warm up input", "yes"), Example("another warm up input , a little longer", "no"))


def warm_up(backbone: Backbone, prompt_length: int = 4) -> float:
    """A training step (forward, backward, clipping, AdamW) and a dev evaluation (greedy decoding and
    label ranking) of a throwaway prompt on ``backbone``; returns the seconds it took."""
    t0 = time.perf_counter()
    cfg = TrainConfig(steps=1)
    d = backbone.d_model
    shared, u, v = torch.full((prompt_length, d), 0.5), torch.ones(1, prompt_length, 1), torch.ones(1, d, 1)
    params = PromptParams(shared, u, v, train_shared=True, train_factors=True).to(backbone.device)
    collator = Collator(backbone.tokenizer, backbone.device, cfg.max_input_tokens, cfg.max_target_tokens)
    opt = make_optimizer(params, cfg)
    loss, _ = task_loss(backbone, params, collator)([Row(0, e) for e in EXAMPLES])
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in params.parameters() if p.requires_grad], cfg.grad_clip)
    opt.step()
    task = TaskData("warm-up", {"train": list(EXAMPLES)})
    evaluate_prompt(backbone, params.task_prompt(0), task, list(EXAMPLES), collator, cfg.eval_batch_size)
    if backbone.device.type == "cuda":
        torch.cuda.synchronize(backbone.device)
    return time.perf_counter() - t0
