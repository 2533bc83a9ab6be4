"""Turning a family into ``training.data.examples.TaskData``: seeded, split-respecting examples, either
bare (for prompt tuning: the prompt supplies the task) or prefixed (pretraining, the gate)."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from training.data.examples import Example, TaskData

from .family import Family, Sample
from .world import SPLITS, World, stable_seed


@dataclass(frozen=True)
class SplitSizes:
    train: int = 500
    dev: int = 60
    test: int = 200

    def __post_init__(self) -> None:
        for split in SPLITS:
            if getattr(self, split) < 1:
                raise ValueError(f"{split} size={getattr(self, split)} must be >= 1")


def samples(fam: Family, world: World, split: str, n: int, seed: int, unique: bool | None = None) -> list[Sample]:
    """``n`` samples of ``split``. Dev/test are de-duplicated by input and, for classification,
    balanced: at most ``ceil(n / labels)`` per label, then every label cut to the rarest one's
    count, so a small held-out pool gives fewer examples rather than a skewed label distribution."""
    unique = split != "train" if unique is None else unique
    rng = random.Random(stable_seed(world.cfg.seed, fam.name, split, seed, "examples"))
    cap = -(-n // len(fam.labels)) if (unique and fam.labels) else n
    out: list[Sample] = []
    seen: set[str] = set()
    per_label: Counter[str] = Counter()
    tries = 0
    while len(out) < n and tries < 20 * n:
        tries += 1
        s = fam.sample(world, rng, split)
        if unique and (s.body in seen or per_label[s.target] >= cap):
            continue
        seen.add(s.body)
        per_label[s.target] += 1
        out.append(s)
    if unique and fam.labels and all(per_label[label] for label in fam.labels):
        keep = min(per_label[label] for label in fam.labels)
        balanced, taken = [], Counter()
        for s in out:
            taken[s.target] += 1
            if taken[s.target] <= keep:
                balanced.append(s)
        out = balanced
    return out


def to_examples(fam: Family, rows: list[Sample], prefixed: bool) -> list[Example]:
    return [Example(fam.prefixed(s.body) if prefixed else s.body, s.target) for s in rows]


def task_data(fam: Family, world: World, sizes: SplitSizes, seed: int = 0, prefixed: bool = False) -> TaskData:
    splits = {
        split: to_examples(fam, samples(fam, world, split, getattr(sizes, split), seed), prefixed) for split in SPLITS
    }
    # the family's label set, not the one its train sample shows (a k-shot subset of a free-text task
    # looks like classification)
    return TaskData(fam.name, splits, fam.labels, fam.labels is None)


def majority(task: TaskData, split: str = "test") -> float:
    """Accuracy of always answering the most frequent training target on ``split``."""
    top = Counter(e.target for e in task.train).most_common(1)[0][0]
    golds = [e.target for e in task.split(split)]
    return sum(g == top for g in golds) / len(golds)


def write_task_dir(task: TaskData, out: str | Path) -> Path:
    """``out/{train,dev,test}.jsonl``, readable by ``mpt ... --task NAME=DIR``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in task.splits.items():
        (out / f"{split}.jsonl").write_text(
            "".join(json.dumps({"input": e.input, "target": e.target}) + "\n" for e in rows)
        )
    return out
