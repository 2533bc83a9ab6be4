"""Scenes: a few facts about people (where they live, their job, what they own and like), the
statements, questions and paraphrases over them, used by the NLI / QA / paraphrase families."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .lexicon import CATEGORIES, NOUNS, OWNABLE, article
from .world import World

RELATIONS = ("lives", "job", "owns", "likes")
FUNCTIONAL = ("lives", "job")  # one value per person: a different value contradicts
VALUE_POOL = {"lives": "city", "job": "job", "likes": "noun:food"}  # owns: the OWNABLE noun categories

# Surface forms of a fact; every form of a relation says the same thing (paraphrases).
FORMS = {
    "lives": ("{p} lives in {v} .", "the home of {p} is in {v} .", "{p} has a home in {v} ."),
    "job": ("{p} works as {a} {v} .", "{p} is {a} {v} .", "the job of {p} is {v} ."),
    "owns": ("{p} owns {a} {v} .", "{p} has {a} {v} .", "the {v} belongs to {p} ."),
    "likes": ("{p} likes {v} .", "{p} enjoys {v} .", "{p} loves eating {v} ."),
}
ASK_VALUE = {
    "lives": "where does {p} live ?",
    "job": "what is the job of {p} ?",
    "owns": "what does {p} own ?",
    "likes": "what does {p} like ?",
}
ASK_PERSON = {
    "lives": "who lives in {v} ?",
    "job": "who works as {a} {v} ?",
    "owns": "who owns {a} {v} ?",
    "likes": "who likes {v} ?",
}
ASK_YES_NO = {
    "lives": "does {p} live in {v} ?",
    "job": "is {p} {a} {v} ?",
    "owns": "does {p} own {a} {v} ?",
    "likes": "does {p} like {v} ?",
}


@dataclass(frozen=True)
class Fact:
    person: str
    relation: str
    value: str

    def render(self, form: int = 0) -> str:
        return FORMS[self.relation][form].format(p=self.person, v=self.value, a=article(self.value))

    def ask(self, table: dict[str, str]) -> str:
        return table[self.relation].format(p=self.person, v=self.value, a=article(self.value))

    def hypernym(self) -> str:
        """'ben owns an animal' for 'ben owns a dog' (entailed by the category of the noun)."""
        cat = NOUNS[self.value][0]
        return f"{self.person} owns {article(cat)} {cat} ."


@dataclass(frozen=True)
class Scene:
    facts: tuple[Fact, ...]

    @property
    def people(self) -> list[str]:
        return sorted({f.person for f in self.facts})

    @property
    def words(self) -> frozenset[str]:
        return frozenset(w for f in self.facts for w in (f.person, f.value))

    def render(self, rng: random.Random) -> str:
        return " ".join(f.render(rng.randrange(3)) for f in self.facts)

    def lookup(self, person: str, relation: str) -> list[str]:
        return [f.value for f in self.facts if f.person == person and f.relation == relation]


class ScenePools:
    """The words one family may use in one split."""

    def __init__(self, world: World, family: str, split: str):
        self.names = world.pool(family, "name", split)
        self.values = {r: world.pool(family, k, split) for r, k in VALUE_POOL.items()}
        self.values["owns"] = [w for c in OWNABLE for w in world.pool(family, f"noun:{c}", split)]

    def other_value(self, relation: str, value: str, rng: random.Random) -> str:
        return rng.choice([v for v in self.values[relation] if v != value])

    def other_name(self, taken: list[str], rng: random.Random) -> str:
        return rng.choice([n for n in self.names if n not in taken])


def sample_scene(pools: ScenePools, rng: random.Random, people: int = 2, facts_each: tuple[int, int] = (1, 2)) -> Scene:
    """``people`` distinct people, each with 1-2 distinct relations; values are distinct per
    relation across the scene, so "who owns a dog ?" has one answer."""
    names = rng.sample(pools.names, people)
    used: dict[str, set[str]] = {r: set() for r in RELATIONS}
    facts = []
    for p in names:
        for r in rng.sample(RELATIONS, rng.randint(*facts_each)):
            v = rng.choice([x for x in pools.values[r] if x not in used[r]])
            used[r].add(v)
            facts.append(Fact(p, r, v))
    rng.shuffle(facts)
    return Scene(tuple(facts))


assert set(OWNABLE) <= set(CATEGORIES)
