"""Families over word knowledge: polarity of adjectives, category and size of nouns.
The backbone can know a held-out word only from pretraining (other families, world text)."""

from __future__ import annotations

import random

from .family import Family, Sample, balanced_label
from .lexicon import NOUNS, article
from .world import World

SENTIMENT_FRAMES = (
    "the {n} was {a} .",
    "what {art} {a} {n} !",
    "i found the {n} {a} and {a2} .",
    "this {n} is really {a} .",
    "honestly , {art} {a} {n} .",
    "my {n} looked {a} today .",
    "such {art} {a} and {a2} {n} .",
    "they say the {n} is {a} .",
)
REVIEW_FRAMES = (
    "the service was {a} .",
    "our waiter was {a} and {a2} .",
    "{a} room , {a2} staff .",
    "the meal tasted {a} .",
    "a {a} place with a {a2} view .",
    "we had a {a} evening .",
    "the hotel felt {a} .",
    "{a} music and {a2} drinks .",
)


def _polar_sentence(name: str, frames, labels: tuple[str, str], world: World, rng: random.Random, split: str) -> Sample:
    label = balanced_label(labels, rng)
    adjs = world.pool(name, "positive" if label == labels[0] else "negative", split)
    frame = rng.choice(world.templates(name, frames, split))
    a, a2 = rng.sample(adjs, 2)
    n = rng.choice(world.pool(name, "noun", split))
    body = frame.format(a=a, a2=a2, n=n, art=article(a))
    used = {a, n} | ({a2} if "{a2}" in frame else set())
    return Sample(body, label, frozenset(w for w in used if w in body.split()), f"frame{frames.index(frame)}")


def sentiment(world: World, rng: random.Random, split: str) -> Sample:
    return _polar_sentence("sentiment", SENTIMENT_FRAMES, ("positive", "negative"), world, rng, split)


def review(world: World, rng: random.Random, split: str) -> Sample:
    return _polar_sentence("review", REVIEW_FRAMES, ("good", "bad"), world, rng, split)


def polarity(world: World, rng: random.Random, split: str) -> Sample:
    label = balanced_label(("positive", "negative"), rng)
    a = rng.choice(world.pool("polarity", label, split))
    return Sample(a, label, frozenset({a}))


def category(world: World, rng: random.Random, split: str) -> Sample:
    n = rng.choice(world.pool("category", "noun", split))
    return Sample(n, NOUNS[n][0], frozenset({n}))


def size_class(world: World, rng: random.Random, split: str) -> Sample:
    label = balanced_label(("big", "small"), rng)
    big = label == "big"  # big: size >= 6, small: size <= 3 (4 and 5 are left out as unclear)
    nouns = [n for n in world.pool("size_class", "noun", split) if (NOUNS[n][1] >= 6 if big else NOUNS[n][1] <= 3)]
    n = rng.choice(nouns)
    return Sample(n, label, frozenset({n}))


def size_pair(family: str, world: World, rng: random.Random, split: str, gap: int = 3) -> tuple[str, str]:
    """Two nouns of the family's split whose sizes differ by at least ``gap`` (an obvious answer)."""
    nouns = world.pool(family, "noun", split)
    while True:
        x, y = rng.sample(nouns, 2)
        if abs(NOUNS[x][1] - NOUNS[y][1]) >= gap:
            return x, y


def bigger(world: World, rng: random.Random, split: str) -> Sample:
    x, y = size_pair("bigger", world, rng, split)
    return Sample(f"{x} or {y} ?", max(x, y, key=lambda w: NOUNS[w][1]), frozenset({x, y}))


def smaller(world: World, rng: random.Random, split: str) -> Sample:
    x, y = size_pair("smaller", world, rng, split)
    return Sample(f"{x} or {y} ?", min(x, y, key=lambda w: NOUNS[w][1]), frozenset({x, y}))


def is_bigger(world: World, rng: random.Random, split: str) -> Sample:
    x, y = size_pair("is_bigger", world, rng, split)
    label = balanced_label(("yes", "no"), rng)
    if (NOUNS[x][1] > NOUNS[y][1]) != (label == "yes"):
        x, y = y, x
    return Sample(f"is {article(x)} {x} bigger than {article(y)} {y} ?", label, frozenset({x, y}))


def same_kind(world: World, rng: random.Random, split: str) -> Sample:
    nouns = world.pool("same_kind", "noun", split)
    label = balanced_label(("same", "different"), rng)
    while True:
        x, y = rng.sample(nouns, 2)
        if (NOUNS[x][0] == NOUNS[y][0]) == (label == "same"):
            return Sample(f"{x} and {y}", label, frozenset({x, y}))


FAMILIES = [
    Family(
        "sentiment",
        "sst2 sentence",
        sentiment,
        "source",
        True,
        "SST-2",
        ("positive", "negative"),
        "is the sentence positive or negative ?",
    ),
    Family(
        "review",
        "restaurant review",
        review,
        "target",
        True,
        "Yelp polarity",
        ("good", "bad"),
        "is the restaurant review good or bad ?",
    ),
    Family("polarity", "word polarity", polarity, "mixture", True, "lexicon", ("positive", "negative")),
    Family(
        "category",
        "what kind of thing",
        category,
        "mixture",
        True,
        "lexicon",
        tuple(sorted({c for c, _ in NOUNS.values()})),
    ),
    Family("size_class", "big or small", size_class, "mixture", True, "lexicon", ("big", "small")),
    Family(
        "bigger",
        "which is bigger",
        bigger,
        "target",
        True,
        "commonsense comparison",
        None,
        "which of two things is bigger ?",
    ),
    Family("smaller", "which is smaller", smaller, "mixture", True, "commonsense comparison"),
    Family(
        "is_bigger",
        "size question",
        is_bigger,
        "target",
        False,
        "unseen: yes/no size comparison",
        ("yes", "no"),
        "is the first thing bigger than the second ?",
    ),
    Family(
        "same_kind",
        "same kind",
        same_kind,
        "target",
        False,
        "unseen: same category",
        ("same", "different"),
        "are the two things of the same kind ?",
    ),
]
