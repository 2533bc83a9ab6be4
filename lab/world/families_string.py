"""List and string skills over a list of nouns (pretraining mixture only): count, first, last,
reverse. They share one input format, so the prefix alone says which to do."""

from __future__ import annotations

import random

from .family import Family, Sample
from .lexicon import NUMBER_WORDS
from .world import World


def _words(family: str, world: World, rng: random.Random, split: str, lo: int = 2, hi: int = 6) -> list[str]:
    return rng.sample(world.pool(family, "noun", split), rng.randint(lo, hi))


def count(world: World, rng: random.Random, split: str) -> Sample:
    w = _words("count", world, rng, split, 1, 7)
    return Sample(" ".join(w), NUMBER_WORDS[len(w)], frozenset(w))


def first_word(world: World, rng: random.Random, split: str) -> Sample:
    w = _words("first_word", world, rng, split)
    return Sample(" ".join(w), w[0], frozenset(w))


def last_word(world: World, rng: random.Random, split: str) -> Sample:
    w = _words("last_word", world, rng, split)
    return Sample(" ".join(w), w[-1], frozenset(w))


def reverse(world: World, rng: random.Random, split: str) -> Sample:
    w = _words("reverse", world, rng, split, 2, 5)
    return Sample(" ".join(w), " ".join(reversed(w)), frozenset(w))


FAMILIES = [
    Family("count", "how many words", count, "mixture", True, "counting", tuple(NUMBER_WORDS[1:8])),
    Family("first_word", "first word", first_word, "mixture", True, "list indexing"),
    Family("last_word", "last word", last_word, "mixture", True, "list indexing"),
    Family("reverse", "reverse the list", reverse, "mixture", True, "list transformation"),
]
