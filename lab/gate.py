"""The promptability gate, checked before any comparison:

1. the frozen backbone, given each pretraining family's *text prefix* and no soft prompt, must
   reach high exact match on held-out inputs (dev words / templates);
2. vanilla prompt tuning on the backbone must clearly beat the same prompt tuning (same steps,
   seeds, init recipe, tokenizer) on a *random* backbone of the same shape, on held-out inputs.

Both read the dev split only: the test split is the comparison grid's and never informs a backbone decision.

    python -m lab.gate --backbone demo/backbone      # writes bench/results/gate.json; exit 1 if it fails
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

from mpt_core.backbone import Backbone, load_backbone
from training.data.examples import TaskData
from training.loop import TrainConfig
from training.stages.teachers import train_vanilla_prompt

from .probe import frozen_prefixed_metrics
from .world.registry import PRETRAINING, TARGETS, family
from .world.tasks import SplitSizes, majority, task_data
from .world.world import World, world_for_backbone


@dataclass
class GateConfig:
    backbone: str = "demo/backbone"
    tasks: tuple[str, ...] = TARGETS
    seeds: tuple[int, ...] = (0, 1)
    prompt_length: int = 16
    steps: int = 300
    batch_size: int = 16
    lr: float = 0.3
    train_examples: int = 500
    n_eval: int = 200  # held-out (dev) examples per task scored by the gate
    min_prefixed_mean: float = 0.8  # mean held-out exact match of the frozen backbone with prefixes
    min_pt_margin: float = 0.15  # mean held-out exact match: PT on the backbone - PT on a random one
    world_seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        for name in ("prompt_length", "steps", "batch_size", "train_examples", "n_eval", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        for t in self.tasks:
            family(t)  # raises on an unknown name
        if not 0 <= self.min_prefixed_mean <= 1 or not 0 <= self.min_pt_margin <= 1:
            raise ValueError(f"thresholds {self.min_prefixed_mean}, {self.min_pt_margin} must be in [0, 1]")


def random_backbone(like: str, out: Path, seed: int = 0) -> Backbone:
    """A freshly initialised model of ``like``'s shape, with ``like``'s tokenizer."""
    torch.manual_seed(seed)
    model = AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(like))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(like).save_pretrained(out)
    return load_backbone(str(out), device="cpu")


GATE_SELECT = 60  # dev examples for checkpoint selection; the rest of dev scores the gate


def gate_task(name: str, cfg: GateConfig, world: World) -> TaskData:
    """The task on *dev* inputs only (dev words and templates): selection on the first
    ``GATE_SELECT``, the score on the other ``n_eval``. The test split, which the comparison grid
    reports, never informs a backbone decision."""
    task = task_data(family(name), world, SplitSizes(train=cfg.train_examples, dev=GATE_SELECT + cfg.n_eval, test=1))
    dev = task.split("dev")
    return TaskData(
        name,
        {"train": task.train, "dev": dev[:GATE_SELECT], "test": dev[GATE_SELECT:]},
        task.fixed_labels,
        task.free_text,
    )


def prompt_tuning_scores(bb: Backbone, cfg: GateConfig, world: World, run_dir: Path) -> dict[str, list[float]]:
    """Held-out (dev) exact match of vanilla PT, per task, one value per seed."""
    out: dict[str, list[float]] = {}
    for name in cfg.tasks:
        task = gate_task(name, cfg, world)
        out[name] = []
        for seed in cfg.seeds:
            tc = TrainConfig(
                steps=cfg.steps,
                batch_size=cfg.batch_size,
                lr=cfg.lr,
                seed=seed,
                eval_every=max(1, cfg.steps // 6),
                eval_max_examples=GATE_SELECT,
                save_every=0,
            )
            _, report = train_vanilla_prompt(
                bb, task, cfg.prompt_length, "vocab", tc, run_dir / f"{name}-{seed}", False, f"gate pt {name}"
            )
            out[name].append(round(report["metrics"]["exact_match"], 4))
    return out


def run_gate(cfg: GateConfig, scratch: Path) -> dict:
    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    world = world_for_backbone(cfg.backbone, cfg.world_seed)
    bb = load_backbone(cfg.backbone, device="cpu")
    frozen = frozen_prefixed_metrics(bb, world, cfg.n_eval)
    prefixed_mean = statistics.mean(m["exact_match"] for m in frozen.values())
    pre = prompt_tuning_scores(bb, cfg, world, scratch / "pretrained")
    rnd = prompt_tuning_scores(
        random_backbone(cfg.backbone, scratch / "random-backbone"), cfg, world, scratch / "random"
    )
    per_task = {
        t: {
            "seen_in_pretraining": family(t).seen,
            "pretrained_mean": round(statistics.mean(pre[t]), 4),
            "random_mean": round(statistics.mean(rnd[t]), 4),
            "pretrained": pre[t],
            "random": rnd[t],
            "majority": round(majority(gate_task(t, cfg, world)), 4) if family(t).labels else None,
        }
        for t in cfg.tasks
    }
    margin = statistics.mean(v["pretrained_mean"] - v["random_mean"] for v in per_task.values())
    checks = {
        "frozen_prefixed_mean": {
            "value": round(prefixed_mean, 4),
            "threshold": cfg.min_prefixed_mean,
            "passed": prefixed_mean >= cfg.min_prefixed_mean,
        },
        "pt_margin_over_random": {
            "value": round(margin, 4),
            "threshold": cfg.min_pt_margin,
            "passed": margin >= cfg.min_pt_margin,
        },
    }
    return {
        "passed": all(c["passed"] for c in checks.values()),
        "checks": checks,
        "frozen_prefixed": {n: {k: round(v, 4) for k, v in m.items()} for n, m in frozen.items()},
        "prompt_tuning": per_task,
        "config": asdict(cfg),
        "families_in_pretraining": list(PRETRAINING),
        "seconds": round(time.perf_counter() - t0, 1),
        "command": " ".join(["python -m lab.gate"] + sys.argv[1:]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.gate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--backbone", default=GateConfig.backbone)
    ap.add_argument("--out", default="bench/results/gate.json")
    ap.add_argument("--steps", type=int, default=GateConfig.steps)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(GateConfig.seeds))
    ap.add_argument("--tasks", nargs="+", default=list(GateConfig.tasks))
    args = ap.parse_args(argv)
    cfg = GateConfig(backbone=args.backbone, steps=args.steps, seeds=tuple(args.seeds), tasks=tuple(args.tasks))
    with tempfile.TemporaryDirectory(prefix="lab-gate-") as tmp:
        report = run_gate(cfg, Path(tmp))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(format_gate(report))
    if not report["passed"]:
        print(
            f"GATE FAILED: fix the backbone (size, steps, data), not the comparison. Details: {args.out}",
            file=sys.stderr,
        )
        return 1
    return 0


def format_gate(report: dict) -> str:
    lines = ["frozen backbone + text prefix, held-out exact match:"]
    lines += [
        f"  {n:11s} {m['exact_match']:.3f}"
        + (f"  (rank {m['rank_accuracy']:.3f}, majority {m['majority']:.3f})" if "rank_accuracy" in m else "")
        for n, m in report["frozen_prefixed"].items()
    ]
    lines.append("vanilla prompt tuning, held-out exact match: pretrained vs random backbone")
    lines += [
        f"  {t:11s} {v['pretrained_mean']:.3f} vs {v['random_mean']:.3f}"
        + (f"  (majority {v['majority']:.3f})" if v["majority"] is not None else "")
        for t, v in report["prompt_tuning"].items()
    ]
    lines += [
        f"{k}: {c['value']:.3f} (needs >= {c['threshold']}) {'PASS' if c['passed'] else 'FAIL'}"
        for k, c in report["checks"].items()
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
