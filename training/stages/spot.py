"""The SPoT-style baseline: one vanilla prompt trained on the mixture of all source tasks.

It is stored as a family without tasks; ``train adapt --mode prompt --family F`` then
initialises a target prompt with it (l·d trainable parameters), as SPoT does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from mpt_core import Family
from mpt_core.backbone import Backbone
from prompts_store import Store

from ..config import TrainConfig
from ..data.examples import TaskData
from ..data.sampler import MixtureSampler
from ..loop import StepCallback
from .stage import StagePlan, refuse_clashes, run_stage, task_seed, vanilla_prompt_params, write_report


def train_spot(
    backbone: Backbone,
    tasks: Sequence[TaskData],
    store: Store,
    family: str,
    prompt_length: int,
    init: str,
    cfg: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    on_step: StepCallback | None = None,
) -> dict:
    run_dir = Path(run_dir)
    refuse_clashes(store, [family], [], overwrite)
    seed = task_seed(cfg.seed, family)
    params = vanilla_prompt_params(backbone, init, prompt_length, seed)
    d = backbone.d_model
    sampler = MixtureSampler([t.train for t in tasks], cfg.batch_size, seed)
    formula = f"l·d = {prompt_length}·{d}"
    plan = StagePlan(f"spot {family}", params, prompt_length * d, formula, sampler, tasks, evaluate=False)
    outcome = run_stage(backbone, plan, cfg, run_dir, resume, on_step)

    fam = Family(family, params.task_prompt(0).cpu(), backbone.fingerprint, source="spot:source-mixture")
    store.put_family(fam, overwrite=overwrite)
    summary = outcome.summary()
    report = {
        "stage": "spot",
        "model": backbone.model_id,
        "family": family,
        "tasks": [t.name for t in tasks],
        "trainable_params": outcome.trainable_params,
        "config": asdict(cfg),
        "final_train_loss": summary["final_train_loss"],
        "seconds": summary["seconds"],
    }
    write_report(run_dir, report)
    return report
