"""Stage 3: target adaptation from ``P* ∘ (u vᵀ)``.

    mode      trains             writes                                   params (rank r)
    factors   u, v               a task in the existing family            (l + d)·r
    full      P*, u, v           a family of one task                     l·d + (l + d)·r
    group     P*, u_k, v_k       a family of the τ target tasks           l·d + (l + d)·r·τ
    prompt    P* (u, v frozen)   a family of one identity task            l·d   (SPoT-style / vanilla PT
                                                                                 from a stored prompt)

Factor init: ``ones``, ``mean`` (mean of the family's tasks' u and v), a task of the family, or
``auto`` (``mean`` when the family has tasks, else ``ones``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from prompts_store import DirectoryStore, Family, Task, check_compatible, compose, validate_name
from prompts_store.backbone import Backbone

from .data import TaskData, k_shot
from .loop import TrainConfig, Trainer
from .prompt_params import PromptParams
from .runs import check_param_count, collator_for, dev_evaluator, final_metrics, task_seed, write_report
from .sampler import MultitaskSampler, SingleTaskSampler
from .steps import task_loss

MODES = ("factors", "full", "group", "prompt")


@dataclass
class AdaptConfig:
    mode: str = "factors"
    factor_init: str = "auto"  # auto (mean if the family has tasks, else ones) | ones | mean | <a task>
    new_family: str | None = None
    shots: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} must be one of {MODES}")
        if self.factor_init not in ("auto", "ones", "mean"):
            validate_name(self.factor_init, "task")
        if self.new_family is not None:
            validate_name(self.new_family, "family")
            if self.mode == "factors":
                raise ValueError("--new-family applies to modes full, group and prompt; 'factors' adds to --family")
        if self.mode == "group" and self.new_family is None:
            raise ValueError("mode 'group' writes a new family: give --new-family NAME")
        if self.shots is not None and self.shots < 1:
            raise ValueError(f"shots={self.shots} must be >= 1")


def initial_factors(store: DirectoryStore, family: Family, how: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(u0 (l, r), v0 (d, r), description) for the chosen factor init."""
    if how == "auto":
        how = "mean" if store.tasks_of(family.name) else "ones"
    if how == "ones":
        return torch.ones(family.length, 1), torch.ones(family.d, 1), "ones"
    if how == "mean":
        members = [store.get_task(n) for n in store.tasks_of(family.name)]
        if not members:
            raise ValueError(f"family {family.name!r} has no tasks to average; use --init ones")
        ranks = {t.rank for t in members}
        if len(ranks) != 1:
            raise ValueError(f"family {family.name!r} mixes ranks {sorted(ranks)}; name one task with --init")
        u = torch.stack([t.u for t in members]).mean(0)
        v = torch.stack([t.v for t in members]).mean(0)
        return u, v, f"mean of {len(members)} source tasks"
    task = store.get_task(how)
    if task.family != family.name:
        raise ValueError(f"init task {how!r} belongs to family {task.family!r}, not {family.name!r}")
    return task.u, task.v, f"source task {how}"


def adapt(
    backbone: Backbone,
    tasks: Sequence[TaskData],
    store: DirectoryStore,
    family: str,
    cfg: TrainConfig,
    acfg: AdaptConfig,
    run_dir: str | Path,
    resume: bool = False,
    overwrite: bool = False,
) -> dict:
    run_dir = Path(run_dir)
    src = store.get_family(family)
    check_compatible(src.name, src.fingerprint, backbone.fingerprint)
    u0, v0, init_desc = initial_factors(store, src, acfg.factor_init)
    if acfg.shots:
        tasks = [t.with_train(k_shot(t.train, acfg.shots, task_seed(cfg.seed, t.name))) for t in tasks]
    if acfg.mode in ("full", "prompt") and acfg.new_family and len(tasks) > 1:
        raise ValueError(f"mode {acfg.mode!r} makes one family per task; --new-family needs a single --task")
    _refuse_clashes(store, tasks, acfg, overwrite)

    groups = [list(tasks)] if acfg.mode == "group" else [[t] for t in tasks]
    reports = {}
    for group in groups:
        name = acfg.new_family or group[0].name
        reports[name if acfg.mode == "group" else group[0].name] = _adapt_group(
            backbone,
            group,
            store,
            src,
            u0,
            v0,
            cfg,
            acfg,
            run_dir / (name if acfg.mode == "group" else group[0].name),
            resume,
            overwrite,
        )
    report = {
        "stage": "adapt",
        "mode": acfg.mode,
        "model": backbone.model_id,
        "family": family,
        "factor_init": init_desc,
        "shots": acfg.shots,
        "config": asdict(cfg),
        "results": reports,
    }
    write_report(run_dir, report)
    return report


def _refuse_clashes(store: DirectoryStore, tasks: Sequence[TaskData], acfg: AdaptConfig, overwrite: bool) -> None:
    if overwrite:
        return
    clash = [t.name for t in tasks if store.has_task(t.name)]
    if acfg.mode != "factors":
        fams = [acfg.new_family] if acfg.new_family else [t.name for t in tasks]
        clash += [f"family {f}" for f in fams if store.has_family(f)]
    if clash:
        raise ValueError(f"already in the store: {clash}; pass --overwrite to replace")


def _adapt_group(
    backbone: Backbone,
    group: list[TaskData],
    store: DirectoryStore,
    src: Family,
    u0: torch.Tensor,
    v0: torch.Tensor,
    cfg: TrainConfig,
    acfg: AdaptConfig,
    run_dir: Path,
    resume: bool,
    overwrite: bool,
) -> dict:
    mode, tau = acfg.mode, len(group)
    l, d, r = src.length, src.d, u0.shape[1]
    seed = task_seed(cfg.seed, group[0].name if tau == 1 else acfg.new_family)
    torch.manual_seed(seed)
    if mode == "prompt":  # vanilla prompt tuning that starts from the stored prompt
        shared0 = compose(src.shared, u0[None], v0[None])[0]
        params = PromptParams.with_ones(shared0, 1, 1, train_shared=True, train_factors=False)
        expected, formula = l * d, f"l·d = {l}·{d}"
    else:
        u = u0.expand(tau, l, r)
        v = v0.expand(tau, d, r)
        params = PromptParams(src.shared, u, v, train_shared=mode != "factors", train_factors=True)
        if mode == "factors":
            expected, formula = (l + d) * r, f"(l+d)·r = ({l}+{d})·{r}"
        else:
            expected = l * d + (l + d) * r * tau
            formula = f"l·d + (l+d)·r·τ = {l}·{d} + ({l}+{d})·{r}·{tau}"
    params = params.to(backbone.device)
    label = f"adapt {mode} {acfg.new_family or group[0].name}"
    count = check_param_count(label, params, expected, formula)

    collator = collator_for(backbone, cfg)
    if tau > 1:
        sampler = MultitaskSampler([t.train for t in group], cfg.batch_size, min(tau, cfg.batch_size), seed)
    else:
        sampler = SingleTaskSampler(group[0].train, cfg.batch_size, seed)
    evaluate = dev_evaluator(backbone, params, group, collator, cfg)
    result = Trainer(
        params, task_loss(backbone, params, collator), sampler, cfg, run_dir, evaluate, label, resume
    ).run()

    source = f"mpt:adapt:{mode}:from={src.name}"
    if mode == "factors":
        fam = src
    else:
        fam = Family(acfg.new_family or group[0].name, params.shared.detach().cpu(), src.fingerprint, source=source)
        store.put_family(fam, overwrite=overwrite)
    metrics = {}
    for i, t in enumerate(group):
        if mode == "prompt":
            task = Task.identity(t.name, fam, source=source)
        else:
            u, v = params.factors(i)
            task = Task(t.name, fam.name, u.cpu(), v.cpu(), source=source)
        store.put_task(task, overwrite=overwrite)
        metrics[t.name] = final_metrics(backbone, params.task_prompt(i), t, collator, cfg)
    return {
        "family": fam.name,
        "tasks": [t.name for t in group],
        "trainable_params": count,
        "train_examples": {t.name: len(t.train) for t in group},
        "best_step": result.best_step,
        "best_dev_score": result.best_score,
        "final_train_loss": result.final_loss,
        "seconds": round(result.seconds, 2),
        "metrics": metrics,
    }
