"""Stage 1: teacher prompts by vanilla prompt tuning, one per source task (L_PLM only).

The run directory holds a store of its own (``<run>/store``) where each teacher is a family of
one identity task, the representation every vanilla prompt shares; ``mpt eval`` and
``mpt predict`` can use it directly, and ``train distill --teachers RUN`` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from mpt_core import Family, Task
from mpt_core.backbone import Backbone
from prompts_store import DirectoryStore, Store

from ..config import TrainConfig
from ..data.examples import TaskData
from ..data.sampler import SingleTaskSampler
from ..loop import StepCallback
from ..prompt_params import PromptParams
from .stage import StagePlan, run_stage, task_seed, vanilla_prompt_params, write_learnt, write_report

SOURCE = "teacher:vanilla-pt"


def teacher_store(run_dir: str | Path) -> Store:
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
    on_step: StepCallback | None = None,
) -> tuple[PromptParams, dict]:
    """Vanilla prompt tuning of one (l, d) prompt on one task; returns the params and a report."""
    seed = task_seed(cfg.seed, task.name)
    params = vanilla_prompt_params(backbone, init, prompt_length, seed)
    d = backbone.d_model
    sampler = SingleTaskSampler(task.train, cfg.batch_size, seed)
    plan = StagePlan(desc, params, prompt_length * d, f"l·d = {prompt_length}·{d}", sampler, [task])
    outcome = run_stage(backbone, plan, cfg, run_dir, resume, on_step)
    return params, outcome.summary() | {"metrics": outcome.metrics[task.name]}


def train_teachers(
    backbone: Backbone,
    tasks: Sequence[TaskData],
    run_dir: str | Path,
    prompt_length: int,
    init: str,
    cfg: TrainConfig,
    resume: bool = False,
    on_step: StepCallback | None = None,
) -> dict:
    run_dir = Path(run_dir)
    store = teacher_store(run_dir)
    reports, families = {}, []
    for task in tasks:  # every teacher trains before any is stored: distillation finds all of them or none
        desc = f"teacher {task.name}"
        params, report = train_vanilla_prompt(
            backbone, task, prompt_length, init, cfg, run_dir / task.name, resume, desc, on_step
        )
        families.append(Family(task.name, params.task_prompt(0).cpu(), backbone.fingerprint, source=SOURCE))
        reports[task.name] = report
    write_learnt(store, families, [Task.identity(f.name, f, source=SOURCE) for f in families], overwrite=True)
    config = {"prompt_length": prompt_length, "init": init, "config": asdict(cfg)}
    write_report(run_dir, {"stage": "teachers", "model": backbone.model_id, **config, "tasks": reports})
    return reports
