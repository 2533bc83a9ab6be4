"""Stage 2: source distillation into one shared prompt P* and per-task rank-r factors.

Students ``P_k = P* ∘ (u_k v_kᵀ)`` learn ``L_PLM + λ(L_logits + L_hidden)`` from the teachers,
on multitask batches of K ~ U{2..κ} source tasks. Ablations: ``distill=False`` (decomposition +
multitask only), ``decompose=False`` (one shared prompt, u = v = ones, distilled).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from prompts_store import DirectoryStore, Family, Task, check_compatible
from prompts_store.backbone import Backbone

from .data import TaskData
from .evaluate import stored_prompt
from .loop import TrainConfig, Trainer
from .prompt_params import INITS, PromptParams, init_prompt
from .runs import check_param_count, collator_for, dev_evaluator, final_metrics, task_seed, write_report
from .sampler import MultitaskSampler
from .steps import HIDDEN_CHOICES, distill_loss

SHARED_INITS = ("teachers-mean",) + INITS


@dataclass
class DistillConfig:
    lam: float = 1.0  # λ, weight of L_logits + L_hidden
    temperature: float = 2.0  # T of the softened distributions
    kappa: int | None = None  # κ, most tasks per batch; None = number of source tasks
    rank: int = 1
    hidden: str = "decoder"  # hidden states matched by L_hidden: decoder | encoder | both
    distill: bool = True
    decompose: bool = True
    shared_init: str = "teachers-mean"
    prompt_length: int = 100  # used only when there are no teachers to take l from

    def __post_init__(self) -> None:
        if self.lam < 0:
            raise ValueError(f"lambda={self.lam} must be >= 0")
        if not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature} must be > 0")
        if self.rank < 1:
            raise ValueError(f"rank={self.rank} must be >= 1")
        if self.hidden not in HIDDEN_CHOICES:
            raise ValueError(f"hidden={self.hidden!r} must be one of {HIDDEN_CHOICES}")
        if self.shared_init not in SHARED_INITS:
            raise ValueError(f"shared init {self.shared_init!r} must be one of {SHARED_INITS}")
        if not self.decompose and self.rank != 1:
            raise ValueError("--no-decompose keeps u = v = ones; rank must stay 1")


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
    store: DirectoryStore,
    family: str,
    cfg: TrainConfig,
    dcfg: DistillConfig,
    run_dir: str | Path,
    teachers_run: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict:
    run_dir = Path(run_dir)
    if dcfg.distill and teachers_run is None:
        raise ValueError("distillation needs --teachers RUN (or --no-distill)")
    needs_teachers = dcfg.distill or dcfg.shared_init == "teachers-mean"
    teachers = load_teachers(backbone, teachers_run, tasks) if needs_teachers and teachers_run else None
    if dcfg.shared_init == "teachers-mean" and teachers is None:
        raise ValueError("--shared-init teachers-mean needs --teachers RUN")
    if not overwrite:
        clash = [n for n in [*(t.name for t in tasks)] if store.has_task(n)] + (
            [family] if store.has_family(family) else []
        )
        if clash:
            raise ValueError(f"already in the store: {clash}; pass --overwrite to replace")

    k, d = len(tasks), backbone.d_model
    length = teachers.shape[1] if teachers is not None else dcfg.prompt_length
    torch.manual_seed(task_seed(cfg.seed, family))
    if dcfg.shared_init == "teachers-mean":
        shared0 = teachers.mean(0)
    else:
        gen = torch.Generator().manual_seed(task_seed(cfg.seed, family))
        shared0 = init_prompt(dcfg.shared_init, length, backbone.model.get_input_embeddings().weight, gen)
    student = PromptParams.with_ones(shared0, k, dcfg.rank, train_shared=True, train_factors=dcfg.decompose)
    student = student.to(backbone.device)
    r = dcfg.rank
    if dcfg.decompose:
        expected, formula = (
            length * d + (length + d) * r * k,
            f"l·d + (l+d)·r·K = {length}·{d} + ({length}+{d})·{r}·{k}",
        )
    else:
        expected, formula = length * d, f"l·d = {length}·{d} (no decomposition)"
    count = check_param_count(f"distill {family}", student, expected, formula)

    collator = collator_for(backbone, cfg)
    kappa = dcfg.kappa or k
    sampler = MultitaskSampler([t.train for t in tasks], cfg.batch_size, kappa, task_seed(cfg.seed, family))
    teacher_rows = teachers.to(backbone.device) if (dcfg.distill and teachers is not None) else None
    loss = distill_loss(backbone, student, teacher_rows, collator, dcfg.lam, dcfg.temperature, dcfg.hidden)
    evaluate = dev_evaluator(backbone, student, tasks, collator, cfg)
    result = Trainer(student, loss, sampler, cfg, run_dir, evaluate, f"distill {family}", resume).run()

    source = "mpt:distill" + ("" if dcfg.distill else ":no-distill") + ("" if dcfg.decompose else ":no-decompose")
    fam = Family(family, student.shared.detach().cpu(), backbone.fingerprint, source=source)
    store.put_family(fam, overwrite=overwrite)
    metrics = {}
    for i, t in enumerate(tasks):
        u, v = student.factors(i)
        store.put_task(Task(t.name, family, u.cpu(), v.cpu(), source=source), overwrite=overwrite)
        metrics[t.name] = final_metrics(backbone, student.task_prompt(i), t, collator, cfg)
    report = {
        "stage": "distill",
        "model": backbone.model_id,
        "family": family,
        "tasks": [t.name for t in tasks],
        "trainable_params": count,
        "config": asdict(cfg),
        "distill": asdict(dcfg) | {"kappa": kappa},
        "best_step": result.best_step,
        "best_dev_score": result.best_score,
        "final_train_loss": result.final_loss,
        "seconds": round(result.seconds, 2),
        "metrics": metrics,
    }
    write_report(run_dir, report)
    return report
