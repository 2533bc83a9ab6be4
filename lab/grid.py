"""The comparison grid: every method x target x shots x seed, on held-out test inputs, with
finished cells cached in ``<run_dir>/cells.jsonl`` so that an interrupted grid continues."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mpt_core.backbone import load_backbone
from training.loop import TrainConfig

from .protocol import METHODS, adapt_target, needed_sources, source_stage
from .world.registry import SOURCES, TARGETS, family
from .world.tasks import SplitSizes, majority, task_data
from .world.world import world_for_backbone

FULL = 0  # shots value meaning "all training examples"


@dataclass
class GridConfig:
    backbone: str = "demo/backbone"
    targets: tuple[str, ...] = TARGETS
    methods: tuple[str, ...] = tuple(METHODS)
    shots: tuple[int, ...] = (4, FULL)  # the quick grid; --full adds 16 and 32
    seeds: tuple[int, ...] = (0, 1, 2)
    prompt_length: int = 16
    teacher_steps: int = 300
    source_steps: int = 600  # distillation and SPoT
    target_steps: int = 100
    batch_size: int = 16
    lr: float = 0.3
    eval_every: int = 25
    train_examples: int = 500
    dev_examples: int = 60
    test_examples: int = 200
    world_seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        for t in self.targets:
            if family(t).role != "target":
                raise ValueError(f"{t!r} is not a target family (targets: {TARGETS})")
        for m in self.methods:
            if m not in METHODS:
                raise ValueError(f"method {m!r} is not one of {sorted(METHODS)}")
        if any(s < 0 for s in self.shots) or not self.shots:
            raise ValueError(f"shots={self.shots} must be non-empty, each >= 1 or {FULL} (= full data)")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        for name in (
            "prompt_length",
            "teacher_steps",
            "source_steps",
            "target_steps",
            "batch_size",
            "eval_every",
            "train_examples",
            "dev_examples",
            "test_examples",
            "threads",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")

    def sizes(self) -> SplitSizes:
        return SplitSizes(self.train_examples, self.dev_examples, self.test_examples)

    def train_config(self, steps: int, seed: int) -> TrainConfig:
        return TrainConfig(
            steps=steps,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=seed,
            eval_every=self.eval_every,
            save_every=0,
            eval_max_examples=self.dev_examples,
        )

    def run_key(self, fingerprint: dict) -> str:
        """What the source stage and the cached cells depend on: the backbone's weights (its
        fingerprint, which hashes the embedding matrix), the source stages needed, the settings."""
        keys = (
            "prompt_length",
            "teacher_steps",
            "source_steps",
            "target_steps",
            "batch_size",
            "lr",
            "eval_every",
            "train_examples",
            "dev_examples",
            "test_examples",
            "world_seed",
        )
        parts = {k: getattr(self, k) for k in keys} | {"backbone": fingerprint, "sources": needed_sources(self.methods)}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def shots_label(shots: int) -> str:
    return "full" if shots == FULL else str(shots)


def run_grid(cfg: GridConfig, run_dir: Path) -> dict:
    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    world = world_for_backbone(cfg.backbone, cfg.world_seed)
    bb = load_backbone(cfg.backbone, device="cpu")
    sizes = cfg.sizes()
    run_dir = run_dir / cfg.run_key(
        bb.fingerprint
    )  # a new source stage and new cells whenever what they depend on changes
    run_dir.mkdir(parents=True, exist_ok=True)
    sources = [task_data(family(s), world, sizes) for s in SOURCES]
    families = needed_sources(cfg.methods)
    source_report_path = run_dir / "source_stage.json"
    source_reused = source_report_path.exists()
    if source_reused:
        source_reports = json.loads(source_report_path.read_text())
    else:
        ts = time.perf_counter()
        reports = source_stage(
            bb,
            sources,
            families,
            cfg.prompt_length,
            cfg.train_config(cfg.teacher_steps, 0),
            cfg.train_config(cfg.source_steps, 0),
            run_dir,
        )
        source_reports = {"seconds": round(time.perf_counter() - ts, 1), "families": families, "reports": reports}
        source_report_path.write_text(json.dumps(source_reports, indent=1, default=str))
    targets = {t: task_data(family(t), world, sizes) for t in cfg.targets}
    cells_path = run_dir / "cells.jsonl"
    done = {}
    if cells_path.exists():
        for line in cells_path.read_text().splitlines():
            c = json.loads(line)
            done[(c["method"], c["target"], c["shots"], c["seed"])] = c
    todo = [(m, t, s, seed) for t in cfg.targets for s in cfg.shots for seed in cfg.seeds for m in cfg.methods]
    reused = sum((m, t, shots_label(s), seed) in done for m, t, s, seed in todo)
    bar = tqdm(
        total=len(todo), desc="grid", unit="run", dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 30
    )
    for m, t, s, seed in todo:
        key = (m, t, shots_label(s), seed)
        if key not in done:
            tc = cfg.train_config(cfg.target_steps, seed)
            rep = adapt_target(
                bb,
                m,
                targets[t],
                s or None,
                cfg.prompt_length,
                tc,
                run_dir,
                run_dir / "targets" / f"{m}-{t}-{shots_label(s)}-{seed}",
            )
            cell = {
                "method": m,
                "target": t,
                "shots": shots_label(s),
                "seed": seed,
                "trainable_params": rep["trainable_params"],
                "train_examples": rep["train_examples"],
                "seconds": rep["seconds"],
                "best_step": rep["best_step"],
                "metrics": {k: v for k, v in rep["metrics"].items() if k in ("exact_match", "f1", "rank_accuracy")},
            }
            with open(cells_path, "a") as f:
                f.write(json.dumps(cell) + "\n")
            done[key] = cell
        bar.update(1)
    bar.close()
    rows = []
    for m, t, s, seed in todo:
        c = done[(m, t, shots_label(s), seed)]
        for metric, value in c["metrics"].items():
            rows.append(
                {
                    "method": m,
                    "target": t,
                    "seen": family(t).seen,
                    "shots": c["shots"],
                    "seed": seed,
                    "metric": metric,
                    "value": round(value, 4),
                    "trainable_params": c["trainable_params"],
                }
            )
    for t, task in targets.items():
        if family(t).labels:
            rows.append(
                {
                    "method": "majority",
                    "target": t,
                    "seen": family(t).seen,
                    "shots": "full",
                    "seed": None,
                    "metric": "exact_match",
                    "value": round(majority(task), 4),
                    "trainable_params": 0,
                }
            )
    return {
        "config": asdict(cfg),
        "sources": list(SOURCES),
        "cells": {
            "total": len(todo),
            "reused": reused,
            "target_seconds": round(sum(done[(m, t, shots_label(s), seed)]["seconds"] for m, t, s, seed in todo), 1),
        },
        "source_stage": {
            "seconds": source_reports["seconds"],
            "reused": source_reused,
            "families": source_reports["families"],
            "source_dev_scores": {
                f: r.get("best_dev_score") for f, r in source_reports["reports"].items() if f != "teachers"
            },
            "teacher_test_exact_match": {
                t: r["metrics"].get("exact_match") for t, r in source_reports["reports"].get("teachers", {}).items()
            },
        },
        "targets": {
            t: {
                "seen_in_pretraining": family(t).seen,
                "analogue": family(t).analogue,
                "test_examples": len(task.split("test")),
            }
            for t, task in targets.items()
        },
        "rows": rows,
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
