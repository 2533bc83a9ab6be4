"""Every training setting, as dataclasses whose fields carry their help text once.

``field(metadata=...)`` keys, read by the ``mpt`` command line to generate its flags:

    help       what the setting means (one line)
    when_none  what a ``None`` default means (shown as ``(default: ...)``)
    choices    the fixed set of values, checked here and offered by the flag
    flag       the flag's name when it is not the field's name (``lam`` -> ``--lambda``)

Fields are keyword-only (a config is never built by position); checks run in ``__post_init__``
with messages that name the bad value. This module imports neither torch nor the rest of
``training`` (``mpt --help`` and ``mpt serve`` stay light); a check that needs the store's name
rule imports it when it runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

SCHEDULES = ("linear", "constant")
INITS = ("random", "vocab")  # a fresh (l, d) prompt: uniform random, or rows of the vocabulary embedding
SHARED_INITS = ("teachers-mean",) + INITS
HIDDEN_CHOICES = ("decoder", "encoder", "both")
MODES = ("factors", "full", "group", "prompt")


def setting(default, help: str, **meta):
    """A dataclass field with its help text (and optional ``when_none``/``choices``/``flag`` metadata)."""
    return field(default=default, metadata={"help": help, **meta})


def check_choices(cfg: object) -> None:
    """Refuse a value outside its field's ``choices``."""
    for f in fields(cfg):
        choices = f.metadata.get("choices")
        value = getattr(cfg, f.name)
        if choices is not None and value not in choices:
            raise ValueError(f"{f.name}={value!r} must be one of {', '.join(choices)}")


def check_at_least(cfg: object, minimum: float, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value is not None and not value >= minimum:
            raise ValueError(f"{name}={value} must be >= {minimum}")


@dataclass(kw_only=True)
class TrainConfig:
    """The optimisation loop every stage shares."""

    steps: int = setting(1000, "optimizer steps")
    batch_size: int = setting(8, "examples per step")
    lr: float = setting(0.3, "learning rate of the shared prompt P*")
    factor_lr: float | None = setting(None, "learning rate of the factors u, v", when_none="the --lr value")
    warmup_steps: int | None = setting(None, "linear warmup steps", when_none="5% of --steps")
    schedule: str = setting("linear", "after warmup: linear decay to 0, or constant", choices=SCHEDULES)
    weight_decay: float = setting(1e-5, "AdamW weight decay")
    grad_clip: float = setting(1.0, "gradient norm clip (0 = off)")
    eval_every: int | None = setting(
        None,
        "evaluate on dev every N steps and keep the best (0 = never)",
        when_none="a fifth of --steps when there is dev data",
    )
    save_every: int | None = setting(
        None,
        "checkpoint every N steps (0 = only at the end)",
        when_none="the --eval-every value, else a fifth of --steps",
    )
    seed: int = setting(0, "random seed; the same seed gives the same numbers on CPU")
    max_input_tokens: int = setting(256, "input truncation length (tokens)")
    max_target_tokens: int = setting(32, "target truncation length (tokens)")
    eval_batch_size: int = setting(32, "batch size of evaluation")
    eval_max_examples: int = setting(500, "dev examples per task used for checkpoint selection (0 = all)")

    def __post_init__(self) -> None:
        check_at_least(self, 1, "steps", "batch_size", "max_input_tokens", "max_target_tokens", "eval_batch_size")
        for name in ("lr", "factor_lr"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name}={value} must be a positive number")
        check_choices(self)
        check_at_least(self, 0, "warmup_steps", "eval_every", "save_every", "grad_clip", "weight_decay")
        check_at_least(self, 0, "eval_max_examples")

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


@dataclass(kw_only=True)
class PromptConfig:
    """A fresh vanilla prompt (teachers, the SPoT baseline)."""

    prompt_length: int = setting(100, "prompt length l (virtual tokens)")
    init: str = setting("vocab", "initial prompt: rows of the vocabulary embedding, or uniform random", choices=INITS)

    def __post_init__(self) -> None:
        check_at_least(self, 1, "prompt_length")
        check_choices(self)


@dataclass(kw_only=True)
class DistillConfig:
    """Source distillation: L_PLM + λ(L_logits + L_hidden) on multitask batches."""

    lam: float = setting(1.0, "weight λ of L_logits + L_hidden", flag="lambda")
    temperature: float = setting(2.0, "temperature T of the softened teacher and student distributions")
    kappa: int | None = setting(
        None, "κ, the most source tasks per batch (each step draws K ~ U{2..κ})", when_none="all source tasks"
    )
    rank: int = setting(1, "rank r of each task's factors u (l, r), v (d, r)")
    hidden: str = setting("decoder", "hidden states matched by L_hidden", choices=HIDDEN_CHOICES)
    distill: bool = setting(True, "learn from the teachers (--no-distill: the ablation without a teacher)")
    decompose: bool = setting(True, "own factors u, v per task (--no-decompose: one shared prompt for all tasks)")
    shared_init: str = setting(
        "teachers-mean", "initial P*: the teachers' mean, vocabulary rows or uniform random", choices=SHARED_INITS
    )
    prompt_length: int = setting(100, "prompt length l when there are no teachers to take it from")

    def __post_init__(self) -> None:
        if not self.lam >= 0:
            raise ValueError(f"lambda={self.lam} must be >= 0")
        if not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature} must be > 0")
        check_at_least(self, 1, "rank", "prompt_length")
        check_choices(self)
        if not self.decompose and self.rank != 1:
            raise ValueError(f"--no-decompose keeps u = v = ones; rank={self.rank} must stay 1")


@dataclass(kw_only=True)
class AdaptConfig:
    """Target adaptation from P* ∘ (u vᵀ)."""

    mode: str = setting(
        "factors",
        "what trains: factors (u, v: a new task of --family), full (P*, u, v: a family of one), "
        "group (P* + the factors of every --task: --new-family), prompt (P* from the stored prompt)",
        choices=MODES,
    )
    factor_init: str = setting(
        "auto",
        "factor init: auto (mean if the family has tasks, else ones), ones, mean, or a task of the family",
        flag="init",
    )
    new_family: str | None = setting(
        None, "the family that modes full, group and prompt write", when_none="the task's name; group needs one"
    )
    shots: int | None = setting(None, "k-shot: train on k examples per task", when_none="every training example")

    def __post_init__(self) -> None:
        from mpt_core import validate_name

        check_choices(self)
        if self.factor_init not in ("auto", "ones", "mean"):
            validate_name(self.factor_init, "task")
        if self.new_family is not None:
            validate_name(self.new_family, "family")
            if self.mode == "factors":
                raise ValueError("--new-family applies to modes full, group and prompt; 'factors' adds to --family")
        if self.mode == "group" and self.new_family is None:
            raise ValueError("mode 'group' writes a new family: give --new-family NAME")
        check_at_least(self, 1, "shots")


@dataclass(kw_only=True)
class TinyConfig:
    """A small random T5 for tests, demos and offline labs (``mpt backbone tiny``)."""

    d_model: int = setting(64, "model width d")
    layers: int = setting(2, "encoder layers (and as many decoder layers)")
    heads: int = setting(4, "attention heads (d_model must be a multiple)")
    d_ff: int | None = setting(None, "feed-forward width", when_none="2 × d_model")
    vocab_size: int = setting(2000, "target vocabulary size, sentinels included (a small corpus may give fewer)")
    extra_ids: int = setting(100, "sentinel tokens <extra_id_N>")
    seed: int = setting(0, "seed of the random weights")

    def __post_init__(self) -> None:
        if self.d_model <= 0 or self.heads <= 0 or self.d_model % self.heads:
            raise ValueError(f"d_model={self.d_model} must be a positive multiple of heads={self.heads}")
        check_at_least(self, 1, "layers")
        if self.vocab_size < self.extra_ids + 64:
            raise ValueError(f"vocab_size={self.vocab_size} is too small for {self.extra_ids} sentinels + text")


@dataclass(kw_only=True)
class WorkerConfig:
    """A training worker (``mpt worker``): how it claims jobs and how it shares the machine with serving."""

    worker_id: str | None = setting(None, "this worker's name in the job rows", when_none="HOST-PID")
    poll_s: float = setting(1.0, "seconds between looks for a queued job when idle")
    lease_s: float = setting(
        60.0, "a job whose worker sends no heartbeat for this long is requeued (or failed after its attempts)"
    )
    progress_s: float = setting(1.0, "seconds between progress writes (step, loss) to the job row")
    threads: int = setting(1, "torch threads: keep it low beside a server on the same CPUs")
    nice: int = setting(10, "CPU niceness of the worker process (0-19; higher yields more to serving)")
    yield_ms: float = setting(0.0, "sleep after every optimizer step, leaving the cores to serving")
    max_jobs: int | None = setting(None, "exit after this many jobs", when_none="run until stopped")
    verbose: bool = setting(False, "show training's own progress output (off: one log line per job)")

    def __post_init__(self) -> None:
        for name in ("poll_s", "lease_s", "progress_s"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name}={value} must be a positive number of seconds")
        check_at_least(self, 1, "threads", "max_jobs")
        check_at_least(self, 0, "yield_ms")
        if not 0 <= self.nice <= 19:
            raise ValueError(f"nice={self.nice} must be in 0..19")
        if self.worker_id is not None and not (self.worker_id.strip() and len(self.worker_id) <= 200):
            raise ValueError(f"worker_id={self.worker_id!r} must be a non-blank name of at most 200 characters")
        if self.progress_s * 2 > self.lease_s:
            raise ValueError(f"progress_s={self.progress_s} must be at most half of lease_s={self.lease_s}")
