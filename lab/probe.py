"""Frozen-backbone accuracy on a family *with its text prefix* and no soft prompt: how well the
backbone does the tasks it was pretrained on, on held-out inputs. Backbone decisions (progress
logs, the gate) read the *dev* split (dev words and templates): the test split stays for the
comparison grid and the demo."""

from __future__ import annotations

import torch

from mpt_core.backbone import Backbone
from training.data.batching import Collator
from training.data.examples import TaskData
from training.evaluate import evaluate_prompt, generate
from training.metrics import exact_match, mean

from .world.registry import PRETRAINING, family
from .world.tasks import SplitSizes, task_data
from .world.world import World


def empty_prompt(backbone: Backbone) -> torch.Tensor:
    """A (0, d) prompt: the input is fed as it is (the prompted forward with nothing prepended)."""
    return torch.zeros(0, backbone.d_model)


def prefixed_task(name: str, world: World, n_dev: int, seed: int = 0) -> TaskData:
    return task_data(family(name), world, SplitSizes(train=200, dev=n_dev, test=1), seed=seed, prefixed=True)


@torch.no_grad()
def probe_families(model, tokenizer, world: World, device: torch.device, n: int, names=PRETRAINING) -> dict[str, float]:
    """Greedy exact match of the prefixed dev inputs of each family (quick, for progress logs)."""
    bb = Backbone(model, tokenizer, "pretraining", device)
    collator = Collator(tokenizer, device, 64, 24)
    out = {}
    for name in names:
        dev = prefixed_task(name, world, n).split("dev")
        preds = generate(bb, empty_prompt(bb), [e.input for e in dev], collator, 64, 12)
        out[name] = round(mean([exact_match(p, e.target) for p, e in zip(preds, dev)]), 4)
    return out


def frozen_prefixed_metrics(backbone: Backbone, world: World, n_dev: int, names=PRETRAINING) -> dict[str, dict]:
    """Full metrics (exact match, rank accuracy, majority) of the frozen backbone with prefixes, on dev."""
    collator = Collator(backbone.tokenizer, backbone.device, 64, 24)
    out = {}
    for name in names:
        task = prefixed_task(name, world, n_dev)
        out[name] = evaluate_prompt(backbone, empty_prompt(backbone), task, task.split("dev"), collator, 64)
    return out
