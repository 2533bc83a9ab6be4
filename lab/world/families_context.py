"""Families over a scene of facts given in the input: entailment (MNLI, RTE), question-NLI (QNLI),
paraphrase (QQP), yes/no QA (BoolQ), extractive QA (SQuAD) and cloze (ReCoRD) analogues. Every
input is ``<text> | <text>``, so without a prefix or a prompt the task is ambiguous."""

from __future__ import annotations

import random

from .family import Family, Sample, balanced_label
from .scenes import ASK_PERSON, ASK_VALUE, ASK_YES_NO, FUNCTIONAL, RELATIONS, Fact, ScenePools, sample_scene
from .world import World

NLI3 = ("entailment", "neutral", "contradiction")


def _hypothesis(scene, pools: ScenePools, label: str, rng: random.Random) -> tuple[str, set[str]] | None:
    """A hypothesis with the given 3-way label w.r.t. ``scene``, or None if this scene cannot give one."""
    if label == "entailment":
        f = rng.choice(scene.facts)
        text = f.hypernym() if f.relation == "owns" and rng.random() < 0.4 else f.render(rng.randrange(3))
        return text, set()
    if label == "contradiction":
        functional = [f for f in scene.facts if f.relation in FUNCTIONAL]
        if not functional:
            return None
        f = rng.choice(functional)
        v = pools.other_value(f.relation, f.value, rng)
        return Fact(f.person, f.relation, v).render(rng.randrange(3)), {v}
    # neutral: a person the scene does not mention, or a relation it does not state for a person
    if rng.random() < 0.5:
        p = pools.other_name(scene.people, rng)
        r = rng.choice(RELATIONS)
    else:
        p = rng.choice(scene.people)
        missing = [r for r in RELATIONS if not scene.lookup(p, r)]
        r = rng.choice(missing)
    v = rng.choice(pools.values[r])
    return Fact(p, r, v).render(rng.randrange(3)), {p, v}


def _nli_sample(family: str, world: World, rng: random.Random, split: str, label: str) -> Sample:
    pools = ScenePools(world, family, split)
    while True:
        scene = sample_scene(pools, rng, people=2, facts_each=(1, 1))
        made = _hypothesis(scene, pools, label, rng)
        if made:
            hyp, extra = made
            return Sample(f"{scene.render(rng)} | {hyp}", label, scene.words | extra)


def nli(world: World, rng: random.Random, split: str) -> Sample:
    return _nli_sample("nli", world, rng, split, balanced_label(NLI3, rng))


def rte(world: World, rng: random.Random, split: str) -> Sample:
    label = balanced_label(("entailment", "not_entailment"), rng)
    three = "entailment" if label == "entailment" else rng.choice(("neutral", "contradiction"))
    s = _nli_sample("rte", world, rng, split, three)
    return Sample(s.body, label, s.words)


def qnli(world: World, rng: random.Random, split: str) -> Sample:
    pools = ScenePools(world, "qnli", split)
    label = balanced_label(("entailment", "not_entailment"), rng)
    scene = sample_scene(pools, rng, people=2, facts_each=(2, 2))
    f = rng.choice(scene.facts)
    if label == "entailment":
        answer = f
    else:  # a sentence about another person, or about another relation of the same person
        others = [
            g
            for g in scene.facts
            if (g.person != f.person and g.relation == f.relation)
            or (g.person == f.person and g.relation != f.relation)
        ]
        answer = (
            rng.choice(others)
            if others
            else Fact(pools.other_name(scene.people, rng), f.relation, pools.other_value(f.relation, f.value, rng))
        )
    words = frozenset({f.person, answer.person, answer.value})
    return Sample(f"{f.ask(ASK_VALUE)} | {answer.render(rng.randrange(3))}", label, words)


def qqp(world: World, rng: random.Random, split: str) -> Sample:
    pools = ScenePools(world, "qqp", split)
    label = balanced_label(("duplicate", "not_duplicate"), rng)
    f = sample_scene(pools, rng, people=1, facts_each=(1, 1)).facts[0]
    i, j = rng.sample(range(3), 2)
    g = f
    if label == "not_duplicate":
        g = (
            Fact(pools.other_name([f.person], rng), f.relation, f.value)
            if rng.random() < 0.5
            else Fact(f.person, f.relation, pools.other_value(f.relation, f.value, rng))
        )
    return Sample(f"{f.render(i)} | {g.render(j)}", label, frozenset({f.person, f.value, g.person, g.value}))


def boolq(world: World, rng: random.Random, split: str) -> Sample:
    pools = ScenePools(world, "boolq", split)
    label = balanced_label(("yes", "no"), rng)
    scene = sample_scene(pools, rng, people=2, facts_each=(1, 1))
    f = rng.choice(scene.facts)
    asked = f if label == "yes" else Fact(f.person, f.relation, pools.other_value(f.relation, f.value, rng))
    return Sample(f"{asked.ask(ASK_YES_NO)} | {scene.render(rng)}", label, scene.words | {asked.value})


def squad(world: World, rng: random.Random, split: str) -> Sample:
    pools = ScenePools(world, "squad", split)
    scene = sample_scene(pools, rng, people=rng.choice((2, 3)), facts_each=(1, 1))
    f = rng.choice(scene.facts)
    if rng.random() < 0.5:
        question, answer = f.ask(ASK_VALUE), f.value
        if len(scene.lookup(f.person, f.relation)) != 1:
            raise AssertionError("a scene holds one value per person and relation")
    else:
        question, answer = f.ask(ASK_PERSON), f.person
    return Sample(f"{question} | {scene.render(rng)}", answer, scene.words)


def record(world: World, rng: random.Random, split: str) -> Sample:
    pools = ScenePools(world, "record", split)
    scene = sample_scene(pools, rng, people=rng.choice((2, 3)), facts_each=(1, 1))
    f = rng.choice(scene.facts)
    query = " ".join("_" if w == f.person else w for w in f.render(rng.randrange(3)).split())
    return Sample(f"{scene.render(rng)} | {query}", f.person, scene.words)


FAMILIES = [
    Family("nli", "mnli", nli, "source", True, "MNLI", NLI3),
    Family("qnli", "qnli", qnli, "source", True, "QNLI", ("entailment", "not_entailment")),
    Family("qqp", "qqp", qqp, "source", True, "QQP", ("duplicate", "not_duplicate")),
    Family("squad", "squad", squad, "source", True, "SQuAD", None),
    Family("record", "record", record, "source", True, "ReCoRD", None),
    Family(
        "rte",
        "rte",
        rte,
        "target",
        True,
        "RTE",
        ("entailment", "not_entailment"),
        "does the passage imply the statement ?",
    ),
    Family(
        "boolq",
        "boolq",
        boolq,
        "target",
        True,
        "BoolQ",
        ("yes", "no"),
        "answer a yes/no question about a short passage",
    ),
]
