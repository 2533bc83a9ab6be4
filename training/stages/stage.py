"""The one skeleton of every training stage (teachers, distillation, adaptation, the SPoT baseline):

    the stage builds its parameters, sampler and loss  ->  a :class:`StagePlan`
    run_stage:  check the trainable count -> loop (Trainer, best on dev kept) -> final metrics
    the stage writes what it learnt to the store (refuse_clashes first; write_learnt: its tasks in
    one transaction) -> write_report (run.json)

so a stage file holds only what differs: how its parameters are built, which sampler and loss,
and what it stores. The pieces every stage shares live here too: the per-task seed, the
dev evaluator for checkpoint selection, the final metrics, the run report.
"""

from __future__ import annotations

import json
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mpt_core import Family, Task
from mpt_core.backbone import Backbone
from prompts_store import Conflict, Store
from prompts_store.backends.atomic import atomic_write

from ..config import TrainConfig
from ..data.batching import Collator
from ..data.examples import TaskData
from ..evaluate import evaluate_prompt
from ..loop import LossFn, Sampler, StepCallback, Trainer, TrainResult
from ..prompt_params import PromptParams, init_prompt
from ..steps import task_loss


class NameClash(Conflict, ValueError):
    """A stage would replace a stored family or task without ``overwrite`` (a :class:`Conflict`;
    also a ValueError, as these refusals were before)."""


@dataclass
class StagePlan:
    """What differs between stages for one training run."""

    label: str  # "distill src": progress bar, logs, the history file's name
    params: PromptParams  # on the backbone's device; task k of params is tasks[k]
    expected: int  # the trainable parameter count the method must have ...
    formula: str  # ... and how it is counted, e.g. "l·d = 100·768"
    sampler: Sampler
    tasks: Sequence[TaskData]  # evaluated on dev during training and scored at the end
    loss: LossFn | None = None  # None: the task loss L_PLM of params
    evaluate: bool = True  # False: no dev evaluation (the last step is kept) and no final metrics


@dataclass
class StageOutcome:
    trainable_params: int
    result: TrainResult
    metrics: dict[str, dict] = field(default_factory=dict)  # task name -> metrics on test (else dev)

    def summary(self) -> dict:
        """The report fields every evaluated stage shares."""
        r = self.result
        return {
            "trainable_params": self.trainable_params,
            "best_step": r.best_step,
            "best_dev_score": r.best_score,
            "final_train_loss": r.final_loss,
            "seconds": round(r.seconds, 2),
        }


def run_stage(
    backbone: Backbone,
    plan: StagePlan,
    cfg: TrainConfig,
    run_dir: str | Path | None,
    resume: bool = False,
    on_step: StepCallback | None = None,
    progress: bool = True,
) -> StageOutcome:
    """Check the parameter count, train (keeping the best on dev), and score each task; the
    trained parameters are left in ``plan.params``. ``run_dir`` None: no checkpoints, no files;
    ``progress`` False: nothing on stderr."""
    count = check_param_count(plan.label, plan.params, plan.expected, plan.formula, progress)
    collator = collator_for(backbone, cfg)
    loss = plan.loss or task_loss(backbone, plan.params, collator)
    evaluate = dev_evaluator(backbone, plan.params, plan.tasks, collator, cfg) if plan.evaluate else None
    trainer = Trainer(plan.params, loss, plan.sampler, cfg, run_dir, evaluate, plan.label, resume, on_step, progress)
    result = trainer.run()
    metrics = {}
    if plan.evaluate:
        for k, task in enumerate(plan.tasks):
            prompt = plan.params.task_prompt(k)
            known = evaluate.known(k, prompt) if evaluate is not None else None
            metrics[task.name] = final_metrics(backbone, prompt, task, collator, cfg, known)
    return StageOutcome(count, result, metrics)


def vanilla_prompt_params(backbone: Backbone, init: str, length: int, seed: int) -> PromptParams:
    """A fresh (l, d) prompt that trains alone (u = v = ones, frozen): teachers and SPoT."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    prompt0 = init_prompt(init, length, backbone.model.get_input_embeddings().weight, gen)
    return PromptParams.with_ones(prompt0, 1, 1, train_shared=True, train_factors=False).to(backbone.device)


def refuse_clashes(store: Store, families: Sequence[str], tasks: Sequence[str], overwrite: bool) -> None:
    """Refuse, before anything is trained or written, to replace stored families or tasks
    unless ``overwrite``."""
    if overwrite:
        return
    clash = [f"family {f}" for f in families if store.has_family(f)] + [f"task {t}" for t in tasks if store.has_task(t)]
    if clash:
        raise NameClash(f"already in the store: {', '.join(clash)}; pass --overwrite to replace")


def write_learnt(store: Store, families: Sequence[Family], tasks: Sequence[Task], overwrite: bool) -> None:
    """Store what a stage learnt: its new families, then ALL its tasks in one transaction
    (``put_tasks``), so a reader never sees part of a stage's tasks and a failed write (a clash with
    a concurrent upload, a crash) leaves none of them. The store has no batch write of families:
    each is its own transaction, written first so the tasks find them."""
    for family in families:
        store.put_family(family, overwrite=overwrite)
    store.put_tasks(tasks, overwrite=overwrite)


def task_seed(seed: int, name: str) -> int:
    """A per-task seed that does not depend on the order tasks are given in."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**31)


def collator_for(backbone: Backbone, cfg: TrainConfig) -> Collator:
    return Collator(backbone.tokenizer, backbone.device, cfg.max_input_tokens, cfg.max_target_tokens)


def dev_evaluator(
    backbone: Backbone, params: PromptParams, tasks: Sequence[TaskData], collator: Collator, cfg: TrainConfig
) -> DevEvaluator | None:
    """Mean dev score over the tasks that have a dev split; None when none has one.
    ``params`` task k is evaluated on ``tasks[k]``."""
    with_dev = [(k, t) for k, t in enumerate(tasks) if t.eval_split()]
    return DevEvaluator(backbone, params, with_dev, collator, cfg) if with_dev else None


class DevEvaluator:
    """The trainer's ``evaluate``: the mean dev score (checkpoint selection), and with one task its
    other metrics (exact match, rank accuracy, ...). It keeps the full
    metrics of its best evaluation (the trainer's rule: the first highest mean), so that the final
    metrics of those parameters, which the trainer loads back at the end, are not computed again."""

    def __init__(
        self,
        backbone: Backbone,
        params: PromptParams,
        with_dev: list[tuple[int, TaskData]],
        collator: Collator,
        cfg: TrainConfig,
    ):
        self.backbone, self.params, self.with_dev, self.collator, self.cfg = backbone, params, with_dev, collator, cfg
        self.best_score: float | None = None
        self.best: dict[int, tuple[torch.Tensor, dict]] = {}  # task k -> (prompt, metrics on all of dev)

    def __call__(self) -> dict[str, float]:
        scores, seen, cap, metrics = {}, {}, self.cfg.eval_max_examples, {}
        for k, t in self.with_dev:
            dev = t.split("dev")
            prompt = self.params.task_prompt(k)
            metrics = evaluate_prompt(
                self.backbone, prompt, t, dev[:cap] if cap else dev, self.collator, self.cfg.eval_batch_size
            )
            scores[t.name] = metrics["score"]
            if not cap or len(dev) <= cap:
                seen[k] = (prompt, metrics)
        score = sum(scores.values()) / len(scores)
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best = score, seen
        if len(scores) == 1:  # one task: its metrics too (exact match, rank accuracy: a job's progress shows them)
            return {"score": score, **{k: v for k, v in metrics.items() if k != "score"}}
        return {"score": score, **scores}

    def known(self, k: int, prompt: torch.Tensor) -> dict | None:
        """The metrics on all of dev of task k's ``prompt`` when the best evaluation had exactly it."""
        hit = self.best.get(k)
        return dict(hit[1]) if hit is not None and torch.equal(hit[0], prompt) else None


def check_param_count(what: str, params: PromptParams, expected: int, formula: str, show: bool = True) -> int:
    got = params.trainable_count()
    if got != expected:
        raise AssertionError(f"{what}: {got} trainable parameters, expected {expected} ({formula})")
    if show:
        tqdm.write(f"{what}: {got:,} trainable parameters ({formula})", file=sys.stderr)
    return got


def final_metrics(
    backbone: Backbone,
    prompt: torch.Tensor,
    task: TaskData,
    collator: Collator,
    cfg: TrainConfig,
    known_dev: dict | None = None,
) -> dict:
    """Metrics on the test split when there is one, else dev (``known_dev``: already measured on
    all of dev for this prompt); empty when neither exists."""
    split = "test" if task.splits.get("test") else task.eval_split()
    if split is None:
        return {}
    if split == "dev" and known_dev is not None:
        return {"split": split, **known_dev}
    return {"split": split, **evaluate_prompt(backbone, prompt, task, task.split(split), collator, cfg.eval_batch_size)}


def write_report(run_dir: Path, report: dict) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "run.json"
    atomic_write(path, json.dumps(report, indent=2, default=str).encode())
    return path
