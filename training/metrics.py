"""Evaluation metrics: exact match and token F1 with SQuAD-style normalisation."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(pred: str, gold: str) -> float:
    return float(normalize(pred) == normalize(gold))


def token_f1(pred: str, gold: str) -> float:
    p, g = normalize(pred).split(), normalize(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def text_metrics(preds: Sequence[str], golds: Sequence[str]) -> dict[str, float]:
    return {
        "exact_match": mean([exact_match(p, g) for p, g in zip(preds, golds)]),
        "f1": mean([token_f1(p, g) for p, g in zip(preds, golds)]),
    }


def majority_baseline(train_targets: Sequence[str], golds: Sequence[str]) -> float:
    """Accuracy of always answering the most frequent training target."""
    if not train_targets or not golds:
        return float("nan")
    top = Counter(train_targets).most_common(1)[0][0]
    return mean([exact_match(top, g) for g in golds])
