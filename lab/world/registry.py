"""Every task family of the lab and its role in the protocol.

sources (the paper's six, in pretraining): nli qnli qqp sentiment squad record
seen targets (in pretraining, the paper's regime): rte boolq bigger review
unseen targets (never in pretraining): is_bigger same_kind
mixture only (pretraining): polarity category size_class smaller count first_word last_word reverse
"""

from __future__ import annotations

from . import families_context, families_lexical, families_string
from .family import Family

FAMILIES: dict[str, Family] = {
    f.name: f for f in families_context.FAMILIES + families_lexical.FAMILIES + families_string.FAMILIES
}
SOURCES = ("nli", "qnli", "qqp", "sentiment", "squad", "record")
SEEN_TARGETS = ("rte", "boolq", "bigger", "review")
UNSEEN_TARGETS = ("is_bigger", "same_kind")
TARGETS = SEEN_TARGETS + UNSEEN_TARGETS
PRETRAINING = tuple(name for name, f in FAMILIES.items() if f.seen)
# Mixing rates of the pretraining mixture (rows per family = per_family x weight): the families
# that reason over a passage learn slowest (after 7000 steps at weight 1, BoolQ/RTE/MNLI were
# still near chance on their own *training* inputs while the one-word families were at 1.0).
MIX_WEIGHTS = {name: 2.0 for name in ("nli", "qnli", "qqp", "squad", "record", "rte", "boolq")}


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown task family {name!r} (known: {sorted(FAMILIES)})")
    return FAMILIES[name]


def check_registry() -> None:
    """The protocol's invariants: six sources in pretraining, targets split into seen and unseen."""
    roles = {n: FAMILIES[n].role for n in FAMILIES}
    if sorted(n for n, r in roles.items() if r == "source") != sorted(SOURCES):
        raise ValueError(f"source families {SOURCES} do not match the registry's roles {roles}")
    if sorted(n for n, r in roles.items() if r == "target") != sorted(TARGETS):
        raise ValueError(f"target families {TARGETS} do not match the registry's roles {roles}")
    for n in SEEN_TARGETS:
        if not FAMILIES[n].seen:
            raise ValueError(f"seen target {n!r} is not in the pretraining mixture")
    for n in UNSEEN_TARGETS:
        if FAMILIES[n].seen:
            raise ValueError(f"unseen target {n!r} is in the pretraining mixture")
    if len(SEEN_TARGETS) < 4 or len(UNSEEN_TARGETS) < 2:
        raise ValueError("the protocol needs >= 4 seen and >= 2 unseen targets")
