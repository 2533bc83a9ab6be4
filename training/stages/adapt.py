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

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from mpt_core import Family, Task, check_compatible, compose
from mpt_core.backbone import Backbone
from prompts_store import Store

from ..config import MODES, AdaptConfig, TrainConfig
from ..data.examples import TaskData, k_shot
from ..data.sampler import MultitaskSampler, SingleTaskSampler
from ..loop import StepCallback
from ..prompt_params import PromptParams
from .stage import StagePlan, refuse_clashes, run_stage, task_seed, write_learnt, write_report

__all__ = ["MODES", "AdaptConfig", "Writer", "adapt", "initial_factors", "store_writer"]

Writer = Callable[[list[Family], list[Task]], None]
"""``write(families, tasks)``: store what the whole run learnt, once at its end — ``families`` the new
families (modes full, group, prompt; none for factors), ``tasks`` every task. :func:`store_writer` is
the default; a training worker passes one that keeps them, to write them in the job's own transaction."""


def store_writer(store: Store, overwrite: bool) -> Writer:
    """Write the families, then every task in one transaction (:func:`.stage.write_learnt`)."""
    return lambda families, tasks: write_learnt(store, families, tasks, overwrite)


def initial_factors(store: Store, family: Family, how: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(u0 (l, r), v0 (d, r), description) for the chosen factor init."""
    if how == "auto":
        how = "mean" if store.count_tasks(family.name) else "ones"
    if how == "ones":
        return torch.ones(family.length, 1), torch.ones(family.d, 1), "ones"
    if how == "mean":
        members = [store.get_task(n) for n in store.list_tasks(family=family.name)]
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
    store: Store,
    family: str,
    cfg: TrainConfig,
    acfg: AdaptConfig,
    run_dir: str | Path | None,
    resume: bool = False,
    overwrite: bool = False,
    on_step: StepCallback | None = None,
    write: Writer | None = None,
    progress: bool = True,
) -> dict:
    """Adapt ``family`` to the target ``tasks`` and write the result to ``store`` (or hand it to
    ``write``); returns the report (also in ``<run_dir>/run.json``, with the checkpoints; with
    ``run_dir=None`` nothing goes to disk, as for a training job). ``on_step`` sees every
    optimizer step and may raise to cancel: nothing of a cancelled group is written. ``progress``
    False: no progress bars or messages on stderr."""
    run_dir = None if run_dir is None else Path(run_dir)
    write = write or store_writer(store, overwrite)
    src = store.get_family(family)
    check_compatible(src.name, src.fingerprint, backbone.fingerprint)
    u0, v0, init_desc = initial_factors(store, src, acfg.factor_init)
    if acfg.shots:
        tasks = [t.with_train(k_shot(t.train, acfg.shots, task_seed(cfg.seed, t.name))) for t in tasks]
    if acfg.mode in ("full", "prompt") and acfg.new_family and len(tasks) > 1:
        raise ValueError(f"mode {acfg.mode!r} makes one family per task; --new-family needs a single --task")
    new_families = [] if acfg.mode == "factors" else [acfg.new_family] if acfg.new_family else [t.name for t in tasks]
    refuse_clashes(store, new_families, [t.name for t in tasks], overwrite)

    groups = [list(tasks)] if acfg.mode == "group" else [[t] for t in tasks]
    reports, families, learnt = {}, [], []
    for group in groups:  # every group trains before anything is written: all of them or none
        name = acfg.new_family if acfg.mode == "group" else group[0].name
        group_dir = None if run_dir is None else run_dir / name
        fam, group_tasks, reports[name] = _adapt_group(
            backbone, group, src, u0, v0, cfg, acfg, group_dir, resume, on_step, progress
        )
        families += [] if fam is src else [fam]
        learnt += group_tasks
    write(families, learnt)
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
    if run_dir is not None:
        write_report(run_dir, report)
    return report


def _adapt_group(
    backbone: Backbone,
    group: list[TaskData],
    src: Family,
    u0: torch.Tensor,  # (l, r)
    v0: torch.Tensor,  # (d, r)
    cfg: TrainConfig,
    acfg: AdaptConfig,
    run_dir: Path | None,
    resume: bool,
    on_step: StepCallback | None,
    progress: bool,
) -> tuple[Family, list[Task], dict]:
    """Train one group; returns its family (``src`` for mode factors), its tasks and its report."""
    mode, tau = acfg.mode, len(group)
    seed = task_seed(cfg.seed, group[0].name if tau == 1 else acfg.new_family)
    torch.manual_seed(seed)
    params, expected, formula = _target_params(src, u0, v0, mode, tau)
    params = params.to(backbone.device)
    if tau > 1:
        sampler = MultitaskSampler([t.train for t in group], cfg.batch_size, min(tau, cfg.batch_size), seed)
    else:
        sampler = SingleTaskSampler(group[0].train, cfg.batch_size, seed)
    label = f"adapt {mode} {acfg.new_family or group[0].name}"
    plan = StagePlan(label, params, expected, formula, sampler, group)
    outcome = run_stage(backbone, plan, cfg, run_dir, resume, on_step, progress)

    source = f"mpt:adapt:{mode}:from={src.name}"
    if mode == "factors":
        fam = src
    else:
        fam = Family(acfg.new_family or group[0].name, params.shared.detach().cpu(), src.fingerprint, source=source)
    tasks = []
    for i, t in enumerate(group):
        if mode == "prompt":
            tasks.append(Task.identity(t.name, fam, source=source))
        else:
            u, v = params.factors(i)
            tasks.append(Task(t.name, fam.name, u.cpu(), v.cpu(), source=source))
    summary = outcome.summary()
    return (
        fam,
        tasks,
        {
            "family": fam.name,
            "tasks": [t.name for t in group],
            "trainable_params": summary.pop("trainable_params"),
            "train_examples": {t.name: len(t.train) for t in group},
            **summary,
            "metrics": outcome.metrics,
        },
    )


def _target_params(
    src: Family, u0: torch.Tensor, v0: torch.Tensor, mode: str, tau: int
) -> tuple[PromptParams, int, str]:
    """The trainable prompt of a mode, with its expected trainable count and that count's formula."""
    l, d, r = src.length, src.d, u0.shape[1]
    if mode == "prompt":  # vanilla prompt tuning that starts from the stored prompt
        shared0 = compose(src.shared, u0[None], v0[None])[0]  # (l, d)
        return PromptParams.with_ones(shared0, 1, 1, train_shared=True, train_factors=False), l * d, f"l·d = {l}·{d}"
    u = u0.expand(tau, l, r)
    v = v0.expand(tau, d, r)
    params = PromptParams(src.shared, u, v, train_shared=mode != "factors", train_factors=True)
    if mode == "factors":
        return params, (l + d) * r, f"(l+d)·r = ({l}+{d})·{r}"
    return params, l * d + (l + d) * r * tau, f"l·d + (l+d)·r·τ = {l}·{d} + ({l}+{d})·{r}·{tau}"
