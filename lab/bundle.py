"""``make demo-bundle``: the embedded demo that ``make serve`` serves, built from the lab.

python -m lab.bundle                      # reuses demo/backbone if present
python -m lab.bundle --rebuild-backbone   # pretrains it first (~45 min on 2 CPU cores)

demo/backbone/   the lab's pretrained T5 + tokenizer (save_pretrained)
demo/store/      a prompt store: family "lab" (P* distilled from the six source tasks) with the
                 source tasks and the demo tasks, each added by ``adapt --mode factors`` (l + d numbers)
demo/tasks.json  each demo task: description, held-out accuracy, example inputs never seen in
                 training with their expected and predicted outputs
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mpt_core.backbone import load_backbone
from prompts_store import DirectoryStore
from training.data.batching import Collator
from training.evaluate import evaluate_prompt, generate, stored_prompt
from training.loop import TrainConfig
from training.stages.adapt import AdaptConfig, adapt
from training.stages.distill import DistillConfig, distill
from training.stages.teachers import train_teachers

from .pretrain import PretrainConfig, pretrain
from .world.registry import SOURCES, family
from .world.tasks import SplitSizes, majority, task_data
from .world.world import world_for_backbone

FAMILY = "lab"


@dataclass
class BundleConfig:
    out: str = "demo"
    tasks: tuple[str, ...] = ("bigger", "review", "boolq", "is_bigger")
    prompt_length: int = 16
    teacher_steps: int = 300
    distill_steps: int = 600
    adapt_steps: int = 300
    batch_size: int = 16
    lr: float = 0.3
    examples_per_task: int = 4
    max_megabytes: float = 20.0
    seed: int = 0
    world_seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        if len(self.tasks) < 3:
            raise ValueError(f"tasks={self.tasks}: the demo needs at least 3 tasks")
        for t in self.tasks:
            if family(t).role != "target":
                raise ValueError(f"demo task {t!r} must be a target family, not a {family(t).role}")
        for name in (
            "prompt_length",
            "teacher_steps",
            "distill_steps",
            "adapt_steps",
            "batch_size",
            "examples_per_task",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.max_megabytes <= 0:
            raise ValueError(f"max_megabytes={self.max_megabytes} must be > 0")


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build_bundle(
    cfg: BundleConfig, work: Path, rebuild_backbone: bool = False, pretrain_cfg: PretrainConfig | None = None
) -> dict:
    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    out = Path(cfg.out)
    backbone_dir = out / "backbone"
    say = lambda msg: tqdm.write(f"[demo-bundle] {msg}", file=sys.stderr)  # noqa: E731
    if rebuild_backbone or not (backbone_dir / "config.json").exists():
        say(f"1/5 pretraining the lab backbone -> {backbone_dir}")
        pretrain(backbone_dir, pretrain_cfg or PretrainConfig(seed=cfg.seed, world_seed=cfg.world_seed))
    else:
        say(f"1/5 using the lab backbone in {backbone_dir} (--rebuild-backbone to pretrain it again)")
    bb = load_backbone(str(backbone_dir), device="cpu")
    world = world_for_backbone(backbone_dir, cfg.world_seed)
    sizes = SplitSizes()
    sources = [task_data(family(s), world, sizes, seed=cfg.seed) for s in SOURCES]
    targets = [task_data(family(t), world, sizes, seed=cfg.seed) for t in cfg.tasks]

    def train_cfg(steps: int) -> TrainConfig:
        return TrainConfig(
            steps=steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=cfg.seed,
            eval_every=max(1, steps // 10),
            save_every=0,
            eval_max_examples=sizes.dev,
        )

    shutil.rmtree(work, ignore_errors=True)
    say(f"2/5 teachers: vanilla prompt tuning on the six source tasks {list(SOURCES)}")
    train_teachers(bb, sources, work / "teachers", cfg.prompt_length, "vocab", train_cfg(cfg.teacher_steps))
    store_dir = out / "store"
    shutil.rmtree(store_dir, ignore_errors=True)
    store = DirectoryStore(store_dir)
    say(f"3/5 distillation into the shared prompt P* of family {FAMILY!r} + rank-one factors")
    distill(
        bb, sources, store, FAMILY, train_cfg(cfg.distill_steps), DistillConfig(), work / "distill", work / "teachers"
    )
    say(f"4/5 demo tasks {list(cfg.tasks)}: adapt --mode factors (only u, v train)")
    adapt(bb, targets, store, FAMILY, train_cfg(cfg.adapt_steps), AdaptConfig(mode="factors"), work / "adapt")
    say("5/5 held-out accuracy of the demo tasks (test words / templates never used in training)")
    tasks_json = describe_tasks(bb, store, targets, cfg)
    (out / "tasks.json").write_text(json.dumps(tasks_json, indent=1) + "\n")
    size = directory_bytes(out)
    report = {
        "config": asdict(cfg),
        "seconds": round(time.perf_counter() - t0, 1),
        "bytes": size,
        "command": " ".join(["python -m lab.bundle"] + sys.argv[1:]),
    }
    (out / "bundle.json").write_text(json.dumps(report, indent=1) + "\n")
    if size > cfg.max_megabytes * 1e6:
        raise SystemExit(f"demo bundle is {size / 1e6:.1f} MB, over the {cfg.max_megabytes} MB limit")
    return {"tasks": tasks_json, **report}


def describe_tasks(bb, store: DirectoryStore, targets, cfg: BundleConfig) -> dict:
    collator = Collator(bb.tokenizer, bb.device, 256, 32)
    out = {}
    for task in targets:
        fam = family(task.name)
        prompt = stored_prompt(store, task.name)
        test = task.split("test")
        metrics = evaluate_prompt(bb, prompt, task, test, collator)
        shown = test[: cfg.examples_per_task]  # the first test examples, not picked by outcome
        preds = generate(bb, prompt, [e.input for e in shown], collator, 32, 12)
        out[task.name] = {
            "description": fam.description,
            "analogue": fam.analogue,
            "seen_in_pretraining": fam.seen,
            "family": FAMILY,
            "labels": list(fam.labels) if fam.labels else None,
            "heldout_test_examples": len(test),
            "heldout_exact_match": round(metrics["exact_match"], 4),
            "heldout_rank_accuracy": round(metrics["rank_accuracy"], 4) if "rank_accuracy" in metrics else None,
            "majority_baseline": round(majority(task), 4) if fam.labels else None,
            "examples": [{"input": e.input, "expected": e.target, "predicted": p} for e, p in zip(shown, preds)],
        }
        tqdm.write(
            f"  {task.name:10s} held-out exact match {metrics['exact_match']:.3f} on {len(test)} examples"
            + (f" (majority {out[task.name]['majority_baseline']:.3f})" if fam.labels else ""),
            file=sys.stderr,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.bundle", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default=BundleConfig.out)
    ap.add_argument("--work", default="build/demo-bundle", help="scratch directory for the training runs")
    ap.add_argument("--rebuild-backbone", action="store_true")
    args = ap.parse_args(argv)
    report = build_bundle(BundleConfig(out=args.out), Path(args.work), args.rebuild_backbone)
    print(f"demo bundle: {args.out} ({report['bytes'] / 1e6:.1f} MB, {report['seconds'] / 60:.1f} min)")
    for name, t in report["tasks"].items():
        print(f"{name}: held-out exact match {t['heldout_exact_match']:.3f}")
        for ex in t["examples"]:
            print(f"   {ex['input']!r} -> {ex['predicted']!r} (expected {ex['expected']!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
