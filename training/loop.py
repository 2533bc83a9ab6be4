"""The training loop shared by every stage: AdamW with warmup + linear decay, gradient clipping,
periodic dev evaluation with best-checkpoint selection, checkpoint + resume, a progress bar."""

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
from .prompt_params import PromptParams
from .sampler import Row


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 8
    lr: float = 0.3  # learning rate of the shared prompt P*
    factor_lr: float | None = None  # learning rate of u, v; None = same as lr
    warmup_steps: int | None = None  # None = 5% of steps
    schedule: str = "linear"  # linear decay to 0 after warmup, or constant
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    eval_every: int | None = None  # None = steps // 5 when a dev split exists; 0 = never
    save_every: int | None = None  # None = same as eval_every (or steps // 5); 0 = only at the end
    seed: int = 0
    max_input_tokens: int = 256
    max_target_tokens: int = 32
    eval_batch_size: int = 32
    eval_max_examples: int = 500  # dev examples used for checkpoint selection (0 = all)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "max_input_tokens", "max_target_tokens", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        for name in ("lr", "factor_lr"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name}={value} must be a positive number")
        if self.schedule not in ("linear", "constant"):
            raise ValueError(f"schedule={self.schedule!r} must be 'linear' or 'constant'")
        for name in ("warmup_steps", "eval_every", "save_every"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name}={value} must be >= 0")
        if self.grad_clip < 0 or self.weight_decay < 0 or self.eval_max_examples < 0:
            raise ValueError("grad_clip, weight_decay and eval_max_examples must be >= 0")

    def warmup(self) -> int:
        return self.warmup_steps if self.warmup_steps is not None else self.steps // 20

    def lr_factor(self, step: int) -> float:
        """Multiplier of the base learning rates at 0-based ``step``."""
        w = self.warmup()
        if step < w:
            return (step + 1) / w
        if self.schedule == "constant":
            return 1.0
        return max(0.0, (self.steps - step) / max(1, self.steps - w))


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


LossFn = Callable[[list[Row]], tuple[torch.Tensor, dict[str, float]]]
EvalFn = Callable[[], dict[str, float]]  # must return a "score" key, higher is better


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
    def __init__(
        self,
        params: PromptParams,
        loss_fn: LossFn,
        sampler: Sampler,
        cfg: TrainConfig,
        run_dir: str | Path,
        evaluate: EvalFn | None = None,
        desc: str = "train",
        resume: bool = False,
    ):
        self.params, self.loss_fn, self.sampler, self.cfg = params, loss_fn, sampler, cfg
        self.run_dir, self.evaluate, self.desc, self.resume = Path(run_dir), evaluate, desc, resume
        self.ckpt = Checkpointer(self.run_dir)
        self.opt = make_optimizer(params, cfg)
        default_every = max(1, cfg.steps // 5)
        self.eval_every = (default_every if cfg.eval_every is None else cfg.eval_every) if evaluate else 0
        self.save_every = cfg.save_every if cfg.save_every is not None else (self.eval_every or default_every)

    def run(self) -> TrainResult:
        cfg, start, history = self.cfg, 0, []
        best: dict | None = None
        best_step, best_score, elapsed = None, None, 0.0
        if self.resume and self.ckpt.exists():
            state, best = self.ckpt.load(self.params, self.opt)
            start, history, elapsed = state["step"], state["history"], state.get("seconds", 0.0)
            best_step, best_score = state.get("best_step"), state.get("best_score")
            self.sampler.load_state(state["sampler"])
            tqdm.write(f"{self.desc}: resumed from step {start} in {self.ckpt.dir}", file=sys.stderr)
        t0, loss_avg = time.perf_counter() - elapsed, None
        bar = tqdm(
            total=cfg.steps,
            initial=start,
            desc=self.desc,
            unit="step",
            dynamic_ncols=True,
            mininterval=progress_interval(),
        )
        for step in range(start, cfg.steps):
            for g in self.opt.param_groups:
                g["lr"] = g["base_lr"] * cfg.lr_factor(step)
            loss, logs = self.loss_fn(self.sampler.next_batch())
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{self.desc}: loss became {float(loss)} at step {step + 1}; lower the lr")
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_([p for p in self.params.parameters() if p.requires_grad], cfg.grad_clip)
            self.opt.step()
            value = float(loss.detach())
            loss_avg = value if loss_avg is None else 0.9 * loss_avg + 0.1 * value
            done = step + 1
            bar.update(1)
            postfix = {"loss": f"{loss_avg:.4f}"}
            if self.eval_every and (done % self.eval_every == 0 or done == cfg.steps):
                scores = self.evaluate()
                history.append({"step": done, "loss": loss_avg, **logs, **{f"dev_{k}": v for k, v in scores.items()}})
                if best_score is None or scores["score"] > best_score:
                    best_score, best_step, best = scores["score"], done, tensors_of(self.params)
                postfix["dev"] = f"{scores['score']:.4f}"
            elif done % max(1, cfg.steps // 50) == 0:
                history.append({"step": done, "loss": loss_avg, **logs})
            bar.set_postfix(postfix, refresh=False)  # refreshing here would ignore mininterval
            if (self.save_every and done % self.save_every == 0) or done == cfg.steps:
                self.ckpt.save(
                    self.params,
                    self.opt,
                    best,
                    {
                        "step": done,
                        "history": history,
                        "sampler": self.sampler.state(),
                        "best_step": best_step,
                        "best_score": best_score,
                        "seconds": time.perf_counter() - t0,
                        "config": asdict(cfg),
                    },
                )
        bar.close()
        if best is not None:
            self.params.load_state_dict(best)
        result = TrainResult(
            cfg.steps, time.perf_counter() - t0, loss_avg or float("nan"), best_step, best_score, history
        )
        (self.run_dir / f"{self.desc.replace(' ', '_')}.history.json").write_text(json.dumps(history, indent=1))
        return result
