"""Task data: text-to-text examples read from a directory of JSONL or CSV files.

A task directory holds ``train.jsonl`` (required) and optionally ``dev.jsonl`` / ``test.jsonl``;
each line is ``{"input": str, "target": str}``. ``.csv`` files with the columns ``input,target``
are read the same way.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from mpt_core import validate_name

SPLITS = ("train", "dev", "test")
MAX_LABELS = 20  # a task with at most this many distinct train targets is a classification task


@dataclass(frozen=True)
class Example:
    input: str
    target: str


@dataclass
class TaskData:
    name: str
    splits: dict[str, list[Example]] = field(default_factory=dict)
    # The label set, when known better than the train split shows (a k-shot subset may miss labels,
    # or hold so few free-text answers that it looks like classification): fixed_labels, or
    # free_text=True for none. Default: inferred from the train targets.
    fixed_labels: tuple[str, ...] | None = None
    free_text: bool = False

    def split(self, name: str) -> list[Example]:
        if name not in self.splits:
            raise ValueError(f"task {self.name!r} has no {name!r} split (has: {sorted(self.splits)})")
        return self.splits[name]

    @property
    def train(self) -> list[Example]:
        return self.split("train")

    def eval_split(self) -> str | None:
        """The split to select checkpoints on: dev if present, else None."""
        return "dev" if self.splits.get("dev") else None

    def labels(self) -> list[str] | None:
        """The label set of a classification task, else None: the fixed labels when given, else
        the sorted distinct train targets when there are at most ``MAX_LABELS`` of them."""
        if self.free_text:
            return None
        if self.fixed_labels is not None:
            return sorted(self.fixed_labels)
        targets = sorted({e.target for e in self.train})
        return targets if len(targets) <= MAX_LABELS else None

    def with_train(self, train: list[Example]) -> TaskData:
        """The task with another train split (a k-shot subset), keeping the whole task's label set."""
        labels = self.labels()
        return TaskData(self.name, {**self.splits, "train": train}, tuple(labels) if labels else None, labels is None)


def read_jsonl(path: Path) -> list[tuple[str, dict]]:
    """The JSON objects of a JSON Lines file, each with its ``file:line`` (blank lines skipped)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{no}: not JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{no}: expected a JSON object per line, got {type(obj).__name__}")
            rows.append((f"{path}:{no}", obj))
    return rows


def read_examples(path: Path) -> list[Example]:
    """Read one split file (.jsonl or .csv), with errors that name the file and line."""
    rows: list[Example] = []
    if path.suffix == ".jsonl":
        rows = [_example(obj, where) for where, obj in read_jsonl(path)]
    elif path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as f:
            for no, obj in enumerate(csv.DictReader(f), 2):
                rows.append(_example(obj, f"{path}:{no}"))
    else:
        raise ValueError(f"{path}: unsupported file type (use .jsonl or .csv)")
    if not rows:
        raise ValueError(f"{path}: no examples")
    return rows


def _example(obj: object, where: str) -> Example:
    if not isinstance(obj, dict) or not isinstance(obj.get("input"), str) or not isinstance(obj.get("target"), str):
        raise ValueError(f"{where}: expected an object with string fields 'input' and 'target'")
    return Example(obj["input"], obj["target"])


def load_task(name: str, directory: str | Path) -> TaskData:
    validate_name(name, "task")
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"task {name!r}: {directory} is not a directory")
    splits = {}
    for split in SPLITS:
        found = [p for p in (directory / f"{split}.jsonl", directory / f"{split}.csv") if p.is_file()]
        if len(found) > 1:
            raise ValueError(f"task {name!r}: both {found[0].name} and {found[1].name} exist; keep one")
        if found:
            splits[split] = read_examples(found[0])
    if "train" not in splits:
        raise ValueError(f"task {name!r}: {directory} has no train.jsonl or train.csv")
    return TaskData(name, splits)


def parse_task_spec(spec: str) -> tuple[str, str]:
    """``NAME=DIR`` -> (name, dir)."""
    name, sep, directory = spec.partition("=")
    if not sep or not name or not directory:
        raise ValueError(f"task spec {spec!r} must look like NAME=DIR")
    return validate_name(name, "task"), directory


def load_tasks(specs: list[str]) -> list[TaskData]:
    tasks = [load_task(*parse_task_spec(s)) for s in specs]
    names = [t.name for t in tasks]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"task name(s) given twice: {sorted(dup)}")
    return tasks


def k_shot(examples: list[Example], k: int, seed: int) -> list[Example]:
    """k examples drawn with ``seed``; classification targets are stratified round-robin by label."""
    if k <= 0:
        raise ValueError(f"shots={k} must be positive")
    if k >= len(examples):
        return list(examples)
    rng = random.Random(seed)
    by_label: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        by_label[e.target].append(e)
    if len(by_label) > MAX_LABELS:
        return rng.sample(examples, k)
    pools = [rng.sample(v, len(v)) for _, v in sorted(by_label.items())]
    rng.shuffle(pools)
    picked: list[Example] = []
    while len(picked) < k:
        for pool in pools:
            if pool and len(picked) < k:
                picked.append(pool.pop())
    rng.shuffle(picked)
    return picked
