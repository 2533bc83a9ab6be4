"""Stage 2: source distillation into one shared prompt P* and per-task rank-r factors.

Students ``P_k = P* ∘ (u_k v_kᵀ)`` learn ``L_PLM + λ(L_logits + L_hidden)`` from the teachers,
on multitask batches of K ~ U{2..κ} source tasks. Ablations: ``distill=False`` (decomposition +
multitask only), ``decompose=False`` (one shared prompt, u = v = ones, distilled).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from mpt_core import Family, Task, check_compatible
from mpt_core.backbone import Backbone
from prompts_store import DirectoryStore, Store

from ..config import DistillConfig, TrainConfig
from ..data.examples import TaskData
from ..data.sampler import MultitaskSampler
from ..evaluate import stored_prompt
from ..loop import StepCallback
from ..prompt_params import PromptParams, init_prompt
from ..steps import distill_loss
from .stage import StagePlan, collator_for, refuse_clashes, run_stage, task_seed, write_learnt, write_report

__all__ = ["DistillConfig", "distill", "load_teachers"]


def load_teachers(backbone: Backbone, run_dir: str | Path, tasks: Sequence[TaskData]) -> torch.Tensor:
    """Teacher prompts (K, l, d) from a ``train teachers`` run, in the order of ``tasks``."""
    store = DirectoryStore(Path(run_dir) / "store", create=False)
    prompts = []
    for t in tasks:
        if not store.has_task(t.name):
            raise ValueError(f"no teacher for task {t.name!r} in {run_dir} (has: {store.list_tasks()})")
        fam = store.get_family(store.get_task(t.name).family)
        check_compatible(fam.name, fam.fingerprint, backbone.fingerprint)
        prompts.append(stored_prompt(store, t.name))
    shapes = {tuple(p.shape) for p in prompts}
    if len(shapes) != 1:
        raise ValueError(f"teacher prompts differ in shape: {sorted(shapes)}")
    return torch.stack(prompts)


def distill(
    backbone: Backbone,
    tasks: Sequence[TaskData],
    store: Store,
    family: str,
    cfg: TrainConfig,
    dcfg: DistillConfig,
    run_dir: str | Path,
    teachers_run: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_step: StepCallback | None = None,
) -> dict:
    run_dir = Path(run_dir)
    if dcfg.distill and teachers_run is None:
        raise ValueError("distillation needs --teachers RUN (or --no-distill)")
    needs_teachers = dcfg.distill or dcfg.shared_init == "teachers-mean"
    teachers = load_teachers(backbone, teachers_run, tasks) if needs_teachers and teachers_run else None
    if dcfg.shared_init == "teachers-mean" and teachers is None:
        raise ValueError("--shared-init teachers-mean needs --teachers RUN")
    refuse_clashes(store, [family], [t.name for t in tasks], overwrite)

    plan = _student_plan(backbone, tasks, family, teachers, cfg, dcfg)
    outcome = run_stage(backbone, plan, cfg, run_dir, resume, on_step)

    student = plan.params
    source = "mpt:distill" + ("" if dcfg.distill else ":no-distill") + ("" if dcfg.decompose else ":no-decompose")
    fam = Family(family, student.shared.detach().cpu(), backbone.fingerprint, source=source)
    learnt = []
    for i, t in enumerate(tasks):
        u, v = student.factors(i)
        learnt.append(Task(t.name, family, u.cpu(), v.cpu(), source=source))
    write_learnt(store, [fam], learnt, overwrite)
    summary = outcome.summary()
    report = {
        "stage": "distill",
        "model": backbone.model_id,
        "family": family,
        "tasks": [t.name for t in tasks],
        "trainable_params": summary.pop("trainable_params"),
        "config": asdict(cfg),
        "distill": asdict(dcfg) | {"kappa": dcfg.kappa or len(tasks)},
        **summary,
        "metrics": outcome.metrics,
    }
    write_report(run_dir, report)
    return report


def _student_plan(
    backbone: Backbone,
    tasks: Sequence[TaskData],
    family: str,
    teachers: torch.Tensor | None,  # (K, l, d)
    cfg: TrainConfig,
    dcfg: DistillConfig,
) -> StagePlan:
    """The students: P* from the teachers' mean (or a fresh prompt) and ones as factors."""
    k, d, r = len(tasks), backbone.d_model, dcfg.rank
    length = teachers.shape[1] if teachers is not None else dcfg.prompt_length
    seed = task_seed(cfg.seed, family)
    torch.manual_seed(seed)
    if dcfg.shared_init == "teachers-mean":
        shared0 = teachers.mean(0)  # (l, d)
    else:
        gen = torch.Generator().manual_seed(seed)
        shared0 = init_prompt(dcfg.shared_init, length, backbone.model.get_input_embeddings().weight, gen)
    student = PromptParams.with_ones(shared0, k, r, train_shared=True, train_factors=dcfg.decompose)
    student = student.to(backbone.device)
    if dcfg.decompose:
        expected = length * d + (length + d) * r * k
        formula = f"l·d + (l+d)·r·K = {length}·{d} + ({length}+{d})·{r}·{k}"
    else:
        expected, formula = length * d, f"l·d = {length}·{d} (no decomposition)"

    sampler = MultitaskSampler([t.train for t in tasks], cfg.batch_size, dcfg.kappa or k, seed)
    teacher_rows = teachers.to(backbone.device) if (dcfg.distill and teachers is not None) else None
    collator = collator_for(backbone, cfg)
    loss = distill_loss(backbone, student, teacher_rows, collator, dcfg.lam, dcfg.temperature, dcfg.hidden)
    return StagePlan(f"distill {family}", student, expected, formula, sampler, tasks, loss)
