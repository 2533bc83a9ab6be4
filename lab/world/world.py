"""The seeded synthetic world: which words and templates each task family may use in each split.

Every family draws its words from *pools* (positive/negative adjectives, nouns of each category,
names, cities, jobs). For each (family, pool) the world permutes the pool with a seed derived
from (world seed, family, pool) and cuts it 60/20/20 into train/dev/test, so a family's dev and
test examples use words that never occur in that family's training examples. Families that have
three or more surface templates also hold out templates: dev/test use templates never used in
train. Other families keep those words in their own training data (each family cuts its pools
differently), and the world text of the span-corruption corpus mentions every word: the backbone
can know a word from pretraining, as T5 knows words from C4, but a prompt can never have
memorised a test word's label from its task's training set.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from .lexicon import CATEGORIES, CITIES, JOBS, NAMES, NEGATIVE, NOUNS, POSITIVE

SPLITS = ("train", "dev", "test")
T = TypeVar("T")


def stable_seed(*parts: object) -> int:
    """A seed from any parts, the same on every run and machine (no Python hash randomisation)."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 0
    train_fraction: float = 0.6  # of each pool; the rest is halved into dev and test
    min_templates_to_hold_out: int = 3  # families with fewer templates hold out words only

    def __post_init__(self) -> None:
        if not 0.2 <= self.train_fraction <= 0.9:
            raise ValueError(f"train_fraction={self.train_fraction} must be in [0.2, 0.9]")
        if self.min_templates_to_hold_out < 2:
            raise ValueError(f"min_templates_to_hold_out={self.min_templates_to_hold_out} must be >= 2")


class World:
    def __init__(self, cfg: WorldConfig | None = None):
        self.cfg = cfg or WorldConfig()
        self._pools: dict[tuple[str, str, str], list[str]] = {}  # (family, kind, split) -> words

    @cached_property
    def base_pools(self) -> dict[str, tuple[str, ...]]:
        pools = {
            "positive": tuple(POSITIVE),
            "negative": tuple(NEGATIVE),
            "name": tuple(NAMES),
            "city": tuple(CITIES),
            "job": tuple(JOBS),
        }
        for c in CATEGORIES:
            pools[f"noun:{c}"] = tuple(n for n, (cat, _) in NOUNS.items() if cat == c)
        return pools

    def cut(self, items: Sequence[T], family: str, what: str) -> dict[str, list[T]]:
        """Seeded 60/20/20 partition of ``items`` for ``family`` (each part non-empty when len >= 3)."""
        items = list(items)
        random.Random(stable_seed(self.cfg.seed, family, what)).shuffle(items)
        n = len(items)
        n_train = max(1, round(n * self.cfg.train_fraction))
        n_dev = max(1, (n - n_train) // 2) if n - n_train >= 2 else 0
        parts = {"train": items[:n_train], "dev": items[n_train : n_train + n_dev], "test": items[n_train + n_dev :]}
        if not parts["dev"]:
            parts["dev"] = parts["test"]
        return parts

    def pool(self, family: str, kind: str, split: str) -> list[str]:
        """The words of pool ``kind`` that ``family`` uses in ``split``."""
        if split not in SPLITS:
            raise ValueError(f"split {split!r} must be one of {SPLITS}")
        key = (family, kind, split)
        if key not in self._pools:
            if kind == "noun":  # every category, each cut on its own so that every split has every category
                self._pools[key] = [w for c in CATEGORIES for w in self.pool(family, f"noun:{c}", split)]
            elif kind in self.base_pools:
                self._pools[key] = self.cut(self.base_pools[kind], family, kind)[split]
            else:
                raise ValueError(f"unknown pool {kind!r} (known: {sorted(self.base_pools)} and 'noun')")
        return self._pools[key]

    def templates(self, family: str, templates: Sequence[T], split: str) -> list[T]:
        """Templates ``family`` uses in ``split``: with >= 3 templates, a quarter (at least one)
        is kept for dev/test only; with fewer, every split uses all of them."""
        if len(templates) < self.cfg.min_templates_to_hold_out:
            return list(templates)
        order = list(range(len(templates)))
        random.Random(stable_seed(self.cfg.seed, family, "templates")).shuffle(order)
        held = max(1, len(templates) // 4)
        keep = order[held:] if split == "train" else order[:held]
        return [templates[i] for i in sorted(keep)]


def world_for_backbone(backbone_dir: str | Path, world_seed: int) -> World:
    """The world whose held-out splits are measured on ``backbone_dir``. A lab backbone records the
    world it was pretrained on (``lab_backbone.json``); another world would put this world's
    held-out words into that backbone's pretraining data, so a mismatch is refused."""
    report = Path(backbone_dir) / "lab_backbone.json"
    if report.is_file():
        trained_on = json.loads(report.read_text())["config"]["world_seed"]
        if trained_on != world_seed:
            raise ValueError(
                f"{backbone_dir} was pretrained on world seed {trained_on}, not {world_seed}: its pretraining "
                f"mixture holds world {world_seed}'s held-out words; use --world-seed {trained_on} or another backbone"
            )
    return World(WorldConfig(seed=world_seed))
