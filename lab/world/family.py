"""What a task family is: a textual prefix and a seeded generator of (body, target) samples for a
split, plus its role in the protocol. An example given to the backbone *with* its prefix reads
``"<prefix> : <body>"`` (the pretraining mixture, the gate's frozen-backbone check); prompt tuning
gets the bare ``body`` and must supply the task through the soft prompt."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .world import SPLITS, World

ROLES = ("source", "target", "mixture")


@dataclass(frozen=True)
class Sample:
    body: str
    target: str
    words: frozenset[str] = frozenset()  # the pool words it uses (held out per split)
    template: str | None = None  # the id of the surface template it uses, when the family has several


Generator = Callable[[World, random.Random, str], Sample]


@dataclass(frozen=True)
class Family:
    name: str
    prefix: str
    make: Generator
    role: str  # source (the paper's six) | target (adaptation) | mixture (pretraining only)
    seen: bool  # in the pretraining mixture
    analogue: str  # the GLUE/SuperGLUE/SQuAD task it stands for, or the skill
    labels: tuple[str, ...] | None = None  # classification labels; None = free text
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"family {self.name!r}: role={self.role!r} must be one of {ROLES}")
        if self.role == "source" and not self.seen:
            raise ValueError(f"family {self.name!r}: a source task must be in the pretraining mixture")
        if not self.prefix or ":" in self.prefix:
            raise ValueError(f"family {self.name!r}: prefix={self.prefix!r} must be non-empty and without ':'")

    def sample(self, world: World, rng: random.Random, split: str) -> Sample:
        if split not in SPLITS:
            raise ValueError(f"split {split!r} must be one of {SPLITS}")
        s = self.make(world, rng, split)
        if self.labels is not None and s.target not in self.labels:
            raise AssertionError(f"family {self.name!r} produced target {s.target!r} outside {self.labels}")
        return s

    def prefixed(self, body: str) -> str:
        return f"{self.prefix} : {body}"


def balanced_label(labels: tuple[str, ...], rng: random.Random) -> str:
    return labels[rng.randrange(len(labels))]
