"""The paper's protocol on the lab: six source tasks -> teachers -> distillation into P* + factors
(and the ablations) and the SPoT source prompt -> target adaptation by every method.

    method         source stage                                   target adaptation            trains
    pt             -                                              vanilla PT, vocab init        l·d
    spot           one prompt on the source mixture (SPoT)        adapt --mode prompt           l·d
    mpt-full       teachers -> distill (MPT)                      adapt --mode full             l·d + l + d
    mpt-factors    teachers -> distill (MPT)                      adapt --mode factors          l + d
    no-distill     distill --no-distill (vocab init, no teachers) adapt --mode full             l·d + l + d
    no-decompose   distill --no-decompose (one distilled prompt)  adapt --mode prompt           l·d
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mpt_core.backbone import Backbone
from prompts_store import DirectoryStore
from training.data.examples import TaskData, k_shot
from training.loop import TrainConfig
from training.stages.adapt import AdaptConfig, adapt
from training.stages.distill import DistillConfig, distill
from training.stages.spot import train_spot
from training.stages.stage import task_seed
from training.stages.teachers import train_teachers, train_vanilla_prompt


@dataclass(frozen=True)
class Method:
    name: str
    source_family: str | None  # the source-stage family it adapts from (None: from scratch)
    mode: str | None  # adapt mode; None = vanilla PT


METHODS = {
    m.name: m
    for m in (
        Method("pt", None, None),
        Method("spot", "spot", "prompt"),
        Method("mpt-full", "mpt", "full"),
        Method("mpt-factors", "mpt", "factors"),
        Method("no-distill", "no-distill", "full"),
        Method("no-decompose", "no-decompose", "prompt"),
    )
}
SOURCE_STAGES = {
    "mpt": DistillConfig(),
    "no-distill": DistillConfig(distill=False, shared_init="vocab"),
    "no-decompose": DistillConfig(decompose=False),
}


def needed_sources(methods: Sequence[str]) -> list[str]:
    return sorted({METHODS[m].source_family for m in methods if METHODS[m].source_family})


def source_stage(
    backbone: Backbone,
    sources: Sequence[TaskData],
    families: Sequence[str],
    prompt_length: int,
    teacher_cfg: TrainConfig,
    distill_cfg: TrainConfig,
    run_dir: Path,
) -> dict[str, dict]:
    """Train every source family needed, each in a store of its own under ``run_dir/stores``."""
    reports: dict[str, dict] = {}
    distilled = [f for f in families if f in SOURCE_STAGES]
    teachers_run = run_dir / "teachers"
    if any(SOURCE_STAGES[f].distill or SOURCE_STAGES[f].shared_init == "teachers-mean" for f in distilled):
        reports["teachers"] = train_teachers(backbone, sources, teachers_run, prompt_length, "vocab", teacher_cfg)
    for fam in families:
        store = DirectoryStore(run_dir / "stores" / fam)
        if fam == "spot":
            reports[fam] = train_spot(
                backbone, sources, store, "spot", prompt_length, "vocab", distill_cfg, run_dir / "spot", overwrite=True
            )
        else:
            dcfg = replace(SOURCE_STAGES[fam], prompt_length=prompt_length)  # l for the stages without teachers
            reports[fam] = distill(
                backbone,
                sources,
                store,
                fam,
                distill_cfg,
                dcfg,
                run_dir / fam,
                teachers_run if (dcfg.distill or dcfg.shared_init == "teachers-mean") else None,
                overwrite=True,
            )
    return reports


def adapt_target(
    backbone: Backbone,
    method: str,
    task: TaskData,
    shots: int | None,
    prompt_length: int,
    cfg: TrainConfig,
    source_root: Path,
    run_dir: Path,
) -> dict:
    """One target adaptation; returns the adapt/PT report of that task (metrics on test, params)."""
    m = METHODS[method]
    shutil.rmtree(run_dir, ignore_errors=True)
    if m.mode is None:
        if shots:
            task = task.with_train(k_shot(task.train, shots, task_seed(cfg.seed, task.name)))
        _, report = train_vanilla_prompt(
            backbone, task, prompt_length, "vocab", cfg, run_dir / "run", False, f"pt {task.name}"
        )
        return report | {"train_examples": len(task.train)}
    store_dir = run_dir / "store"
    shutil.copytree(source_root / "stores" / m.source_family, store_dir)  # a scratch copy: targets never see each other
    store = DirectoryStore(store_dir)
    acfg = AdaptConfig(mode=m.mode, shots=shots)
    report = adapt(backbone, [task], store, m.source_family, cfg, acfg, run_dir / "run", overwrite=True)
    res = report["results"][task.name]
    return {k: res[k] for k in ("trainable_params", "best_step", "seconds")} | {
        "metrics": res["metrics"][task.name],
        "train_examples": res["train_examples"][task.name],
    }
