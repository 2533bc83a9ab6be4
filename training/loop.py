"""The training loop shared by every stage: AdamW with warmup + linear decay, gradient clipping,
periodic dev evaluation with best-checkpoint selection, checkpoint + resume, a progress bar.
Without a run directory (a training job: nothing to resume from) it keeps nothing on disk."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from tqdm.auto import tqdm

from .checkpoint import Checkpointer, tensors_of
from .config import TrainConfig
from .data.sampler import Row
from .prompt_params import PromptParams


def progress_interval() -> float:
    """Seconds between progress-bar refreshes: live on a terminal, sparse in a log file."""
    return 0.2 if sys.stderr.isatty() else 15.0


class Sampler(Protocol):
    def next_batch(self) -> list[Row]: ...
    def state(self) -> list: ...
    def load_state(self, state: list) -> None: ...


@dataclass
class TrainResult:
    steps: int
    seconds: float
    final_loss: float
    best_step: int | None = None
    best_score: float | None = None
    history: list[dict] = field(default_factory=list)


LossFn = Callable[[list[Row]], tuple[torch.Tensor, "dict[str, torch.Tensor | float]"]]
"""``loss_fn(rows) -> (loss, logs)``: the loss to minimise and the terms to log, as 0-d tensors (read
from the device with the loss, in one sync per step) or floats."""
EvalFn = Callable[[], dict[str, float]]  # must return a "score" key, higher is better
StepCallback = Callable[[int, int, float, dict[str, float], "dict[str, float] | None"], None]
"""``on_step(step, steps, loss, logs, dev)``, called after every optimizer step (and its checkpoint,
when one is due) with the 1-based step, the total, the smoothed training loss, this step's loss
terms, and the dev scores when an evaluation ran at this step (else None). It may raise to stop
the run: the exception propagates out of :meth:`Trainer.run` and the stage writes nothing; a
later ``resume`` continues from the last checkpoint. It never changes the numbers."""


def read_losses(loss: torch.Tensor, logs: dict[str, torch.Tensor | float]) -> tuple[float, dict[str, float]]:
    """The loss and its logged terms as floats, read from the device at once: the step's one sync."""
    keys = [k for k, v in logs.items() if isinstance(v, torch.Tensor)]
    values = torch.stack([loss.detach().float()] + [logs[k].detach().float() for k in keys]).tolist()
    return values[0], {**logs, **dict(zip(keys, values[1:]))}


def make_optimizer(params: PromptParams, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = []
    if params.shared.requires_grad:
        groups.append({"params": [params.shared], "lr": cfg.lr})
    factors = [p for p in list(params.u) + list(params.v) if p.requires_grad]
    if factors:
        groups.append({"params": factors, "lr": cfg.factor_lr or cfg.lr})
    if not groups:
        raise ValueError("nothing to train: every prompt parameter is frozen")
    for g in groups:
        g["base_lr"] = g["lr"]
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


class Trainer:
    """Runs ``cfg.steps`` optimizer steps of ``loss_fn`` on ``sampler``'s batches; keeps the best
    parameters on dev when ``evaluate`` is given (and loads them back at the end). With a
    ``run_dir`` it checkpoints there (``save_every``) and writes the history; ``run_dir=None``
    writes nothing (and cannot ``resume``). Either way the numbers are the same."""

    def __init__(
        self,
        params: PromptParams,
        loss_fn: LossFn,
        sampler: Sampler,
        cfg: TrainConfig,
        run_dir: str | Path | None,
        evaluate: EvalFn | None = None,
        desc: str = "train",
        resume: bool = False,
        on_step: StepCallback | None = None,
        progress: bool = True,
    ):
        self.params, self.loss_fn, self.sampler, self.cfg = params, loss_fn, sampler, cfg
        self.progress = progress  # the progress bar and messages on stderr (a job's worker turns them off)
        if resume and run_dir is None:
            raise ValueError(f"{desc}: resume needs a run directory")
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.evaluate, self.desc, self.resume, self.on_step = evaluate, desc, resume, on_step
        self.ckpt = None if self.run_dir is None else Checkpointer(self.run_dir)
        self.opt = make_optimizer(params, cfg)
        default_every = max(1, cfg.steps // 5)
        self.eval_every = (default_every if cfg.eval_every is None else cfg.eval_every) if evaluate else 0
        self.save_every = cfg.save_every if cfg.save_every is not None else (self.eval_every or default_every)

    def run(self) -> TrainResult:
        cfg = self.cfg
        self.history: list[dict] = []
        self.best: dict | None = None
        self.best_step: int | None = None
        self.best_score: float | None = None
        self.loss_avg: float | None = None
        resuming = self.resume and self.ckpt is not None and self.ckpt.exists()
        start, elapsed = self._restore() if resuming else (0, 0.0)
        self.t0 = time.perf_counter() - elapsed
        bar = tqdm(
            total=cfg.steps,
            initial=start,
            desc=self.desc,
            unit="step",
            dynamic_ncols=True,
            mininterval=progress_interval(),
            disable=not self.progress,
        )
        try:
            for step in range(start, cfg.steps):
                self._step(step, bar)
        finally:
            bar.close()  # also when a step or on_step raises: the error message starts on a line of its own
        if self.best is not None:
            self.params.load_state_dict(self.best)
        result = TrainResult(
            cfg.steps,
            time.perf_counter() - self.t0,
            self.loss_avg or float("nan"),
            self.best_step,
            self.best_score,
            self.history,
        )
        if self.run_dir is not None:
            history = self.run_dir / f"{self.desc.replace(' ', '_')}.history.json"
            history.write_text(json.dumps(self.history, indent=1))
        return result

    def _restore(self) -> tuple[int, float]:
        """Load the run directory's checkpoint; returns (steps done, seconds spent)."""
        state, self.best = self.ckpt.load(self.params, self.opt)
        self.history, self.best_step, self.best_score = (
            state["history"],
            state.get("best_step"),
            state.get("best_score"),
        )
        self.sampler.load_state(state["sampler"])
        if self.progress:
            tqdm.write(f"{self.desc}: resumed from step {state['step']} in {self.ckpt.dir}", file=sys.stderr)
        return state["step"], state.get("seconds", 0.0)

    def _step(self, step: int, bar: tqdm) -> None:
        """One optimizer step at 0-based ``step``, then evaluation, checkpoint and ``on_step`` as due."""
        cfg = self.cfg
        for g in self.opt.param_groups:
            g["lr"] = g["base_lr"] * cfg.lr_factor(step)
        loss, logs = self.loss_fn(self.sampler.next_batch())
        value, logs = read_losses(loss, logs)
        if not math.isfinite(value):
            raise FloatingPointError(f"{self.desc}: loss became {value} at step {step + 1}; lower the lr")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in self.params.parameters() if p.requires_grad], cfg.grad_clip)
        self.opt.step()
        self.loss_avg = value if self.loss_avg is None else 0.9 * self.loss_avg + 0.1 * value
        done = step + 1
        bar.update(1)
        postfix = {"loss": f"{self.loss_avg:.4f}"}
        scores = None
        if self.eval_every and (done % self.eval_every == 0 or done == cfg.steps):
            scores = self.evaluate()
            dev = {f"dev_{k}": v for k, v in scores.items()}
            self.history.append({"step": done, "loss": self.loss_avg, **logs, **dev})
            if self.best_score is None or scores["score"] > self.best_score:
                self.best_score, self.best_step, self.best = scores["score"], done, tensors_of(self.params)
            postfix["dev"] = f"{scores['score']:.4f}"
        elif done % max(1, cfg.steps // 50) == 0:
            self.history.append({"step": done, "loss": self.loss_avg, **logs})
        bar.set_postfix(postfix, refresh=False)  # refreshing here would ignore mininterval
        if self.ckpt is not None and ((self.save_every and done % self.save_every == 0) or done == cfg.steps):
            self._save(done)
        if self.on_step is not None:
            self.on_step(done, cfg.steps, self.loss_avg, logs, scores)

    def _save(self, done: int) -> None:
        state = {
            "step": done,
            "history": self.history,
            "sampler": self.sampler.state(),
            "best_step": self.best_step,
            "best_score": self.best_score,
            "seconds": time.perf_counter() - self.t0,
            "config": asdict(self.cfg),
        }
        self.ckpt.save(self.params, self.opt, self.best, state)
