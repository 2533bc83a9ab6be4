"""Frozen-backbone accuracy on a family *with its text prefix* and no soft prompt: how well the
backbone does the tasks it was pretrained on, on held-out inputs (test words and templates)."""

from __future__ import annotations

import torch

from training.backbone import Backbone
from training.batching import Collator
from training.data import TaskData
from training.evaluate import evaluate_prompt, generate
from training.metrics import exact_match, mean

from .registry import PRETRAINING, family
from .tasks import SplitSizes, task_data
from .world import World


def empty_prompt(backbone: Backbone) -> torch.Tensor:
    """A (0, d) prompt: the input is fed as it is (the prompted forward with nothing prepended)."""
    return torch.zeros(0, backbone.d_model)


def prefixed_task(name: str, world: World, n_test: int, seed: int = 0) -> TaskData:
    return task_data(family(name), world, SplitSizes(train=200, dev=1, test=n_test), seed=seed, prefixed=True)


@torch.no_grad()
def probe_families(model, tokenizer, world: World, device: torch.device, n: int, names=PRETRAINING) -> dict[str, float]:
    """Greedy exact match of the prefixed test inputs of each family (quick, for progress logs)."""
    bb = Backbone(model, tokenizer, "pretraining", device)
    collator = Collator(tokenizer, device, 64, 24)
    out = {}
    for name in names:
        test = prefixed_task(name, world, n).split("test")
        preds = generate(bb, empty_prompt(bb), [e.input for e in test], collator, 64, 12)
        out[name] = round(mean([exact_match(p, e.target) for p, e in zip(preds, test)]), 4)
    return out


def frozen_prefixed_metrics(backbone: Backbone, world: World, n_test: int, names=PRETRAINING) -> dict[str, dict]:
    """Full metrics (exact match, rank accuracy, majority) of the frozen backbone with prefixes."""
    collator = Collator(backbone.tokenizer, backbone.device, 64, 24)
    out = {}
    for name in names:
        task = prefixed_task(name, world, n_test)
        out[name] = evaluate_prompt(backbone, empty_prompt(backbone), task, task.split("test"), collator, 64)
    return out
