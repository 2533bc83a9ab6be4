"""The paper's metrics (as ATTEMPT / T5 compute them), in pure Python, on a 0-100 scale.

Every ``score_*`` returns a dict whose ``score`` is the number the paper's tables report:
accuracy; MCC for CoLA; Pearson for STS-B; F1a for MultiRC; F1 for SQuAD / MRQA / ReCoRD.
Predictions are compared as stripped strings; a classification prediction that is not a label
counts as wrong (for binary F1 it is flipped to the opposite of the gold label, as ATTEMPT's
``f1_score_with_invalid`` does).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

from training.metrics import exact_match, token_f1

UNPARSABLE = -1.0  # STS-B: what a prediction that is not a number counts as (T5 / ATTEMPT)


def _check(preds: Sequence, golds: Sequence) -> None:
    if len(preds) != len(golds):
        raise ValueError(f"{len(preds)} predictions for {len(golds)} gold rows")
    if not golds:
        raise ValueError("no rows to score")


def accuracy(preds: Sequence[str], golds: Sequence[str]) -> float:
    _check(preds, golds)
    return 100.0 * sum(p.strip() == g for p, g in zip(preds, golds)) / len(golds)


def _f1(tp: int, fp: int, fn: int) -> float:
    return 0.0 if tp == 0 else 200.0 * tp / (2 * tp + fp + fn)


def binary_f1(preds: Sequence[str], golds: Sequence[str], labels: Sequence[str]) -> float:
    """F1 of the positive class ``labels[1]``; an invalid prediction becomes the opposite of gold."""
    _check(preds, golds)
    neg, pos = labels
    tp = fp = fn = 0
    for p, g in zip(preds, golds):
        p = p.strip()
        if p not in (neg, pos):
            p = neg if g == pos else pos
        tp += p == pos and g == pos
        fp += p == pos and g != pos
        fn += p != pos and g == pos
    return _f1(tp, fp, fn)


def macro_f1(preds: Sequence[str], golds: Sequence[str], labels: Sequence[str]) -> float:
    """Unweighted mean of the per-class F1 over ``labels`` (CB)."""
    _check(preds, golds)
    scores = []
    for c in labels:
        tp = sum(p.strip() == c and g == c for p, g in zip(preds, golds))
        fp = sum(p.strip() == c and g != c for p, g in zip(preds, golds))
        fn = sum(p.strip() != c and g == c for p, g in zip(preds, golds))
        scores.append(_f1(tp, fp, fn))
    return sum(scores) / len(scores)


def matthews(preds: Sequence[str], golds: Sequence[str]) -> float:
    """Matthews correlation (multiclass form, like sklearn: an invalid prediction is one more
    class); 0 when it is undefined, e.g. for a constant prediction."""
    _check(preds, golds)
    preds = [p.strip() for p in preds]
    n, correct = len(golds), sum(p == g for p, g in zip(preds, golds))
    t, p = Counter(golds), Counter(preds)
    classes = set(t) | set(p)
    cov_tp = correct * n - sum(p[c] * t[c] for c in classes)
    cov_pp = n * n - sum(v * v for v in p.values())
    cov_tt = n * n - sum(v * v for v in t.values())
    if cov_pp == 0 or cov_tt == 0:
        return 0.0
    return 100.0 * cov_tp / math.sqrt(cov_pp * cov_tt)


def parse_float(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation ×100; 0 when undefined (a constant side), as ATTEMPT's guard does."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return 0.0
    return 100.0 * sxy / math.sqrt(sxx * syy)


def ranks(xs: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank (as scipy.stats.rankdata)."""
    order = sorted(range(len(xs)), key=xs.__getitem__)
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    return pearson(ranks(xs), ranks(ys))


def score_correlation(preds: Sequence[str], golds: Sequence[str]) -> dict:
    """STS-B: Pearson (the score) and Spearman on the parsed numbers; a prediction that is not a
    number counts as -1, and how many there were is reported as ``unparsable``."""
    _check(preds, golds)
    parsed = [parse_float(p) for p in preds]
    gold = [parse_float(g) for g in golds]
    if any(g is None for g in gold):
        raise ValueError(f"STS-B gold target {golds[gold.index(None)]!r} is not a number")
    xs = [UNPARSABLE if v is None else v for v in parsed]
    return {
        "score": pearson(xs, gold),
        "pearson": pearson(xs, gold),
        "spearman": spearman(xs, gold),
        "unparsable": float(sum(v is None for v in parsed)),
    }


def score_multirc(preds: Sequence[str], golds: Sequence[str], groups: Sequence[str], labels: Sequence[str]) -> dict:
    """MultiRC: F1a, binary F1 over all answer options (the score), and EM, the share of
    questions whose options are all predicted right."""
    _check(preds, golds)
    if len(groups) != len(golds):
        raise ValueError(f"{len(groups)} groups for {len(golds)} rows")
    right: dict[str, list[bool]] = defaultdict(list)
    for p, g, q in zip(preds, golds, groups):
        right[q].append(p.strip() == g)
    em = 100.0 * sum(all(v) for v in right.values()) / len(right)
    f1a = binary_f1(preds, golds, labels)
    return {"score": f1a, "f1a": f1a, "em": em, "questions": float(len(right))}


def score_qa(preds: Sequence[str], answers: Sequence[Sequence[str]]) -> dict:
    """SQuAD-style EM and token F1 (SQuAD normalisation), each the max over the gold answers."""
    _check(preds, answers)
    if any(not a for a in answers):
        raise ValueError("a row has no gold answer")
    em = sum(max(exact_match(p, a) for a in golds) for p, golds in zip(preds, answers))
    f1 = sum(max(token_f1(p, a) for a in golds) for p, golds in zip(preds, answers))
    n = len(answers)
    return {"score": 100.0 * f1 / n, "f1": 100.0 * f1 / n, "em": 100.0 * em / n}


def score_rows(metric: str, preds: Sequence[str], rows: Sequence[dict], labels: Sequence[str] | None) -> dict:
    """The metric named ``metric`` (see ``registry.Spec.metric``) on prepared evaluation rows."""
    golds = [r["target"] for r in rows]
    _check(preds, golds)
    if metric == "qa":
        return score_qa(preds, [r.get("answers") or [r["target"]] for r in rows])
    if metric == "correlation":
        return score_correlation(preds, golds)
    if labels is None:
        raise ValueError(f"metric {metric!r} needs the task's labels")
    invalid = float(sum(p.strip() not in labels for p in preds))
    acc = accuracy(preds, golds)
    if metric == "accuracy":
        out = {"score": acc, "accuracy": acc}
    elif metric == "f1_accuracy":
        out = {"score": acc, "accuracy": acc, "f1": binary_f1(preds, golds, labels)}
    elif metric == "mcc":
        mcc = matthews(preds, golds)
        out = {"score": mcc, "mcc": mcc, "accuracy": acc}
    elif metric == "cb":
        out = {"score": acc, "accuracy": acc, "macro_f1": macro_f1(preds, golds, labels)}
    elif metric == "multirc":
        if any("group" not in r for r in rows):
            raise ValueError("MultiRC rows need their question 'group' (prepare writes it into dev/test rows)")
        out = score_multirc(preds, golds, [r["group"] for r in rows], labels)
    else:
        raise ValueError(f"unknown metric {metric!r}")
    return {**out, "invalid": invalid}
