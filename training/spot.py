"""The SPoT-style baseline: one vanilla prompt trained on the mixture of all source tasks.

It is stored as a family without tasks; ``train adapt --mode prompt --family F`` then
initialises a target prompt with it (l·d trainable parameters), as SPoT does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from prompts_store import DirectoryStore, Family
from prompts_store.backbone import Backbone

from .data import TaskData
from .loop import TrainConfig, Trainer
from .prompt_params import PromptParams, init_prompt
from .runs import check_param_count, collator_for, task_seed, write_report
from .sampler import MixtureSampler
from .steps import task_loss


def train_spot(
    backbone: Backbone,
    tasks: Sequence[TaskData],
    store: DirectoryStore,
    family: str,
    prompt_length: int,
    init: str,
    cfg: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    overwrite: bool = False,
) -> dict:
    run_dir = Path(run_dir)
    if store.has_family(family) and not overwrite:
        raise ValueError(f"family {family!r} already exists; pass --overwrite to replace")
    seed = task_seed(cfg.seed, family)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    prompt0 = init_prompt(init, prompt_length, backbone.model.get_input_embeddings().weight, gen)
    params = PromptParams.with_ones(prompt0, 1, 1, train_shared=True, train_factors=False).to(backbone.device)
    d = backbone.d_model
    count = check_param_count(f"spot {family}", params, prompt_length * d, f"l·d = {prompt_length}·{d}")
    collator = collator_for(backbone, cfg)
    sampler = MixtureSampler([t.train for t in tasks], cfg.batch_size, seed)
    result = Trainer(
        params, task_loss(backbone, params, collator), sampler, cfg, run_dir, None, f"spot {family}", resume
    ).run()
    fam = Family(family, params.task_prompt(0).cpu(), backbone.fingerprint, source="spot:source-mixture")
    store.put_family(fam, overwrite=overwrite)
    report = {
        "stage": "spot",
        "model": backbone.model_id,
        "family": family,
        "tasks": [t.name for t in tasks],
        "trainable_params": count,
        "config": asdict(cfg),
        "final_train_loss": result.final_loss,
        "seconds": round(result.seconds, 2),
    }
    write_report(run_dir, report)
    return report
