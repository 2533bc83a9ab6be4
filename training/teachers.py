"""Stage 1: teacher prompts by vanilla prompt tuning, one per source task (L_PLM only).

The run directory holds a store of its own (``<run>/store``) where each teacher is a family of
one identity task, the representation every vanilla prompt shares; ``mpt eval`` and
``mpt predict`` can use it directly, and ``train distill --teachers RUN`` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from prompts_store import DirectoryStore, Family, Task
from prompts_store.backbone import Backbone

from .data import TaskData
from .loop import TrainConfig, Trainer
from .prompt_params import PromptParams, init_prompt
from .runs import check_param_count, collator_for, dev_evaluator, final_metrics, task_seed, write_report
from .sampler import SingleTaskSampler
from .steps import task_loss


def teacher_store(run_dir: str | Path) -> DirectoryStore:
    return DirectoryStore(Path(run_dir) / "store")


def train_vanilla_prompt(
    backbone: Backbone,
    task: TaskData,
    prompt_length: int,
    init: str,
    cfg: TrainConfig,
    run_dir: Path,
    resume: bool,
    desc: str,
) -> tuple[PromptParams, dict]:
    """Vanilla prompt tuning of one (l, d) prompt on one task; returns the params and a report."""
    seed = task_seed(cfg.seed, task.name)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    prompt0 = init_prompt(init, prompt_length, backbone.model.get_input_embeddings().weight, gen)
    params = PromptParams.with_ones(prompt0, 1, 1, train_shared=True, train_factors=False).to(backbone.device)
    d = backbone.d_model
    count = check_param_count(desc, params, prompt_length * d, f"l·d = {prompt_length}·{d}")
    collator = collator_for(backbone, cfg)
    sampler = SingleTaskSampler(task.train, cfg.batch_size, seed)
    evaluate = dev_evaluator(backbone, params, [task], collator, cfg)
    result = Trainer(params, task_loss(backbone, params, collator), sampler, cfg, run_dir, evaluate, desc, resume).run()
    report = {
        "trainable_params": count,
        "best_step": result.best_step,
        "best_dev_score": result.best_score,
        "final_train_loss": result.final_loss,
        "seconds": round(result.seconds, 2),
        "metrics": final_metrics(backbone, params.task_prompt(0), task, collator, cfg),
    }
    return params, report


def train_teachers(
    backbone: Backbone,
    tasks: Sequence[TaskData],
    run_dir: str | Path,
    prompt_length: int,
    init: str,
    cfg: TrainConfig,
    resume: bool = False,
) -> dict:
    run_dir = Path(run_dir)
    store = teacher_store(run_dir)
    reports = {}
    for task in tasks:
        params, report = train_vanilla_prompt(
            backbone, task, prompt_length, init, cfg, run_dir / task.name, resume, f"teacher {task.name}"
        )
        family = Family(task.name, params.task_prompt(0).cpu(), backbone.fingerprint, source="teacher:vanilla-pt")
        store.put_family(family, overwrite=True)
        store.put_task(Task.identity(task.name, family, source="teacher:vanilla-pt"), overwrite=True)
        reports[task.name] = report
    write_report(
        run_dir,
        {
            "stage": "teachers",
            "model": backbone.model_id,
            "prompt_length": prompt_length,
            "init": init,
            "config": asdict(cfg),
            "tasks": reports,
        },
    )
    return reports
