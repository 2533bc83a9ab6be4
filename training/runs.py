"""Pieces every training stage shares: dev evaluation for checkpoint selection, the
trainable-parameter check, and the run report (``<run>/run.json``)."""

from __future__ import annotations

import json
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from prompts_store.atomic import atomic_write
from prompts_store.backbone import Backbone

from .batching import Collator
from .data import TaskData
from .evaluate import evaluate_prompt
from .loop import EvalFn, TrainConfig
from .prompt_params import PromptParams


def task_seed(seed: int, name: str) -> int:
    """A per-task seed that does not depend on the order tasks are given in."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**31)


def collator_for(backbone: Backbone, cfg: TrainConfig) -> Collator:
    return Collator(backbone.tokenizer, backbone.device, cfg.max_input_tokens, cfg.max_target_tokens)


def dev_evaluator(
    backbone: Backbone, params: PromptParams, tasks: Sequence[TaskData], collator: Collator, cfg: TrainConfig
) -> EvalFn | None:
    """Mean dev score over the tasks that have a dev split; None when none has one.
    ``params`` task k is evaluated on ``tasks[k]``."""
    with_dev = [(k, t) for k, t in enumerate(tasks) if t.eval_split()]
    if not with_dev:
        return None

    def evaluate() -> dict[str, float]:
        scores = {}
        for k, t in with_dev:
            dev = t.split("dev")
            dev = dev[: cfg.eval_max_examples] if cfg.eval_max_examples else dev
            scores[t.name] = evaluate_prompt(backbone, params.task_prompt(k), t, dev, collator, cfg.eval_batch_size)[
                "score"
            ]
        return {"score": sum(scores.values()) / len(scores), **({} if len(scores) == 1 else scores)}

    return evaluate


def check_param_count(what: str, params: PromptParams, expected: int, formula: str) -> int:
    got = params.trainable_count()
    if got != expected:
        raise AssertionError(f"{what}: {got} trainable parameters, expected {expected} ({formula})")
    tqdm.write(f"{what}: {got:,} trainable parameters ({formula})", file=sys.stderr)
    return got


def final_metrics(
    backbone: Backbone, prompt: torch.Tensor, task: TaskData, collator: Collator, cfg: TrainConfig
) -> dict:
    """Metrics on the test split when there is one, else dev; empty when neither exists."""
    split = "test" if task.splits.get("test") else task.eval_split()
    if split is None:
        return {}
    return {"split": split, **evaluate_prompt(backbone, prompt, task, task.split(split), collator, cfg.eval_batch_size)}


def write_report(run_dir: Path, report: dict) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "run.json"
    atomic_write(path, json.dumps(report, indent=2, default=str).encode())
    return path
