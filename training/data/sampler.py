"""Batch samplers: the paper's multitask sampler and a plain single-task one.

Multitask: each step draws K ~ U{2..κ}, then K distinct source tasks, then fills the
mini-batch with their examples (as evenly as the batch size allows).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .examples import Example


@dataclass(frozen=True)
class Row:
    task: int  # index of the task in the sampler's task list
    example: Example


class MultitaskSampler:
    def __init__(self, tasks: Sequence[Sequence[Example]], batch_size: int, kappa: int, seed: int):
        n = len(tasks)
        if n < 2:
            raise ValueError(f"multitask sampling needs at least 2 tasks, got {n}")
        if not 2 <= kappa <= n:
            raise ValueError(f"kappa={kappa} must be between 2 and the number of tasks ({n})")
        if batch_size < kappa:
            raise ValueError(f"batch_size={batch_size} must be >= kappa={kappa} (one example per chosen task)")
        if any(len(t) == 0 for t in tasks):
            raise ValueError("every task needs at least one training example")
        self.tasks, self.batch_size, self.kappa = tasks, batch_size, kappa
        self.rng = random.Random(seed)

    def draw_tasks(self) -> list[int]:
        k = self.rng.randint(2, self.kappa)  # K ~ U{2..κ}, inclusive
        return self.rng.sample(range(len(self.tasks)), k)

    def next_batch(self) -> list[Row]:
        chosen = self.draw_tasks()
        share, extra = divmod(self.batch_size, len(chosen))
        rows = []
        for i, t in enumerate(chosen):
            m = share + (i < extra)
            rows += [Row(t, self.rng.choice(self.tasks[t])) for _ in range(m)]
        return rows

    def state(self) -> list:
        return _jsonable(self.rng.getstate())

    def load_state(self, state: list) -> None:
        self.rng.setstate(_tupled(state))


class SingleTaskSampler:
    """Uniform sampling with replacement of one task's examples (task index 0)."""

    def __init__(self, examples: Sequence[Example], batch_size: int, seed: int, task: int = 0):
        if not examples:
            raise ValueError("the task needs at least one training example")
        self.examples, self.batch_size, self.task = examples, batch_size, task
        self.rng = random.Random(seed)

    def next_batch(self) -> list[Row]:
        return [Row(self.task, self.rng.choice(self.examples)) for _ in range(self.batch_size)]

    def state(self) -> list:
        return _jsonable(self.rng.getstate())

    def load_state(self, state: list) -> None:
        self.rng.setstate(_tupled(state))


class MixtureSampler(SingleTaskSampler):
    """Examples pooled from several tasks, sampled uniformly per example (the SPoT source mixture)."""

    def __init__(self, tasks: Sequence[Sequence[Example]], batch_size: int, seed: int):
        super().__init__([e for t in tasks for e in t], batch_size, seed)


def _jsonable(state: tuple) -> list:
    return [state[0], list(state[1]), state[2]]


def _tupled(state: list) -> tuple:
    return (state[0], tuple(state[1]), state[2])
