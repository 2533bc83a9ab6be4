"""Predicting with a prompt and scoring the predictions against a split."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mpt_core import compose
from mpt_core.backbone import Backbone
from mpt_core.prompted import encode, greedy_decode, score_candidates
from prompts_store import Store

from .data.batching import Collator
from .data.examples import Example, TaskData
from .metrics import majority_baseline, mean, text_metrics


def stored_prompt(store: Store, task: str) -> torch.Tensor:
    """The (l, d) prompt of a stored task, composed by the shared formula."""
    t = store.get_task(task)
    fam = store.get_family(t.family)
    return compose(fam.shared, t.u[None], t.v[None])[0]


@torch.inference_mode()
def generate(
    backbone: Backbone,
    prompt: torch.Tensor,
    inputs: Sequence[str],
    collator: Collator,
    batch_size: int,
    max_new_tokens: int,
) -> list[str]:
    """Greedy outputs for ``inputs`` under one (l, d) prompt."""
    outputs: list[str] = []
    prompt = prompt.to(backbone.device)
    for i in range(0, len(inputs), batch_size):
        ids, mask = collator.inputs(inputs[i : i + batch_size])
        hidden, enc_mask = encode(backbone.model, prompt.expand(ids.shape[0], -1, -1), ids, mask)
        tokens = greedy_decode(backbone.model, hidden, enc_mask, max_new_tokens)
        outputs += backbone.tokenizer.batch_decode(tokens, skip_special_tokens=True)
    return [o.strip() for o in outputs]


@torch.inference_mode()
def rank_scores(
    backbone: Backbone,
    prompt: torch.Tensor,
    inputs: Sequence[str],
    labels: Sequence[str],
    collator: Collator,
    batch_size: int,
) -> list[list[float]]:
    """Log-likelihood of every label for every input: (len(inputs), len(labels))."""
    cand_ids, cand_mask = collator.targets(labels)  # (C, m)
    n_labels, out = len(labels), []
    prompt = prompt.to(backbone.device)
    for i in range(0, len(inputs), batch_size):
        ids, mask = collator.inputs(inputs[i : i + batch_size])
        b = ids.shape[0]
        hidden, enc_mask = encode(backbone.model, prompt.expand(b, -1, -1), ids, mask)
        rows = torch.arange(b, device=ids.device).repeat_interleave(n_labels)  # (b*C,)
        scores = score_candidates(backbone.model, hidden, enc_mask, rows, cand_ids.repeat(b, 1), cand_mask.repeat(b, 1))
        out += scores.view(b, n_labels).tolist()
    return out


def rank_classify(
    backbone: Backbone,
    prompt: torch.Tensor,
    inputs: Sequence[str],
    labels: Sequence[str],
    collator: Collator,
    batch_size: int,
) -> list[str]:
    """For each input, the label with the highest log-likelihood (label-restricted decoding)."""
    scores = rank_scores(backbone, prompt, inputs, labels, collator, batch_size)
    return [labels[max(range(len(labels)), key=row.__getitem__)] for row in scores]


def evaluate_prompt(
    backbone: Backbone,
    prompt: torch.Tensor,
    task: TaskData,
    examples: Sequence[Example],
    collator: Collator,
    batch_size: int = 32,
    max_new_tokens: int | None = None,
) -> dict[str, float]:
    """Metrics of one prompt on ``examples``. ``score`` is the main metric: accuracy for
    classification tasks (exact match), token F1 for free text. Classification tasks also get
    ``rank_accuracy`` (best-scoring label) and the ``majority`` baseline."""
    labels = task.labels()
    golds = [e.target for e in examples]
    if max_new_tokens is None:
        max_new_tokens = max(len(backbone.tokenizer(g).input_ids) for g in golds) + 2
    preds = generate(backbone, prompt, [e.input for e in examples], collator, batch_size, max_new_tokens)
    out = text_metrics(preds, golds)
    if labels:
        ranked = rank_classify(backbone, prompt, [e.input for e in examples], labels, collator, batch_size)
        out["rank_accuracy"] = mean([float(p == g) for p, g in zip(ranked, golds)])
        out["majority"] = majority_baseline([e.target for e in task.train], golds)
        out["score"] = out["exact_match"]
    else:
        out["score"] = out["f1"]
    out["n"] = float(len(examples))
    return out
