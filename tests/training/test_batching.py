"""The collator tokenises each text once, yet its tensors are exactly the tokenizer's on the batch."""

import copy

import pytest
import torch

from training.data.batching import Collator
from training.data.examples import Example
from training.data.sampler import Row


def tokenizer_batch(tokenizer, texts, max_length):
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return enc.input_ids, enc.attention_mask


@pytest.mark.parametrize("side", ["right", "left"])
def test_batches_equal_the_tokenizers_own_padding_and_truncation(backbone, toy_tasks, side):
    tokenizer = copy.copy(backbone.tokenizer)
    tokenizer.padding_side = side
    long = " ".join(["word"] * 50)  # past max_input_tokens: truncated, EOS kept as the tokenizer keeps it
    examples = toy_tasks["polarity"].train[:5] + [Example(long, "a b c d e f g h i j"), Example("x", "y")]
    collator = Collator(tokenizer, backbone.device, max_input_tokens=12, max_target_tokens=4)
    collator.input_ids.size = collator.target_ids.size = 3  # a bound smaller than a batch: evicts, stays right
    for step in range(4):
        rows = [Row(k % 2, examples[(k * 3 + step) % len(examples)]) for k in range(6)] + [Row(1, examples[0])]
        b = collator(rows)
        ids, mask = tokenizer_batch(tokenizer, [r.example.input for r in rows], 12)
        target_ids, target_mask = tokenizer_batch(tokenizer, [r.example.target for r in rows], 4)
        assert torch.equal(b.input_ids, ids) and torch.equal(b.attention_mask, mask)
        assert torch.equal(b.labels, target_ids.masked_fill(target_mask == 0, -100))
        assert torch.equal(b.task, torch.tensor([k % 2 for k in range(6)] + [1])) and torch.equal(b.task_host, b.task)
        assert b.input_ids.dtype == b.attention_mask.dtype == b.labels.dtype == torch.long
        assert all(
            torch.equal(x, y) for x, y in zip(collator.inputs([long, "x"]), tokenizer_batch(tokenizer, [long, "x"], 12))
        )
    assert len(collator.input_ids.ids) <= 3


def test_each_distinct_text_is_tokenised_once(backbone, toy_tasks):
    calls = []

    class Counting:
        def __init__(self, inner):
            self.inner, self.pad_token_id, self.padding_side = inner, inner.pad_token_id, inner.padding_side

        def __call__(self, texts, **kw):
            calls.append(list(texts))
            return self.inner(texts, **kw)

    collator = Collator(Counting(backbone.tokenizer), backbone.device)
    examples = toy_tasks["size"].train[:4]
    for _ in range(5):
        collator([Row(0, e) for e in examples + examples])
    distinct = [len({e.input for e in examples}), len({e.target for e in examples})]
    assert [len(c) for c in calls] == distinct  # inputs once, targets once (distinct texts only), then never again
