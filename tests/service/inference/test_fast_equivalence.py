"""The fast path gives the reference path's outputs (mpt_core.prompted: encode +
greedy_decode / score_candidates over the Hugging Face forward): greedy ids identical, scores
within 1e-4, in fp32, for every attention kernel and cross-attention mode."""

import pytest
import torch

from mpt_core.prompted import encode, greedy_decode, score_candidates
from service.inference.fast import FastOptions, FastT5

from ..fast_cases import candidates, mixed_batch, random_t5

MODES = [("eager", "cached"), ("eager", "absorbed"), ("sdpa", "cached"), ("sdpa", "absorbed")]
LENGTHS = [7, 3, 5, 1, 6]


@pytest.fixture(scope="module", params=["relu-tied", "gated-untied"])
def model(request):
    return random_t5(request.param)


@pytest.fixture(scope="module")
def batch(model):
    return mixed_batch(model.config.d_model, LENGTHS, model.config.vocab_size)


@pytest.fixture(scope="module")
def reference(model, batch):
    return encode(model, batch.prompts, batch.ids, batch.mask)


def assert_scores_close(ours, theirs):
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("attention", "cross"), MODES)
def test_greedy_ids_are_identical(model, batch, reference, attention, cross):
    fast = FastT5(model, FastOptions(attention=attention, cross=cross))
    state = fast.encode(batch.prompts, batch.ids, batch.mask)
    torch.testing.assert_close(state.hidden, reference[0], rtol=0, atol=1e-5)
    assert torch.equal(fast.generate(state, 6), greedy_decode(model, *reference, 6))


@pytest.mark.parametrize(("attention", "cross"), MODES)
def test_scores_match_for_ragged_candidates(model, batch, reference, attention, cross):
    # rows with 3, 1, 0 (row 2 is not scored), 2 and 4 candidates of 1..4 tokens, some sharing first tokens
    rows = [0, 0, 0, 1, 3, 3, 4, 4, 4, 4]
    lengths = [3, 3, 1, 4, 2, 4, 3, 3, 3, 2]
    row_index, ids, mask = candidates(rows, lengths, model.config.vocab_size)
    fast = FastT5(model, FastOptions(attention=attention, cross=cross))
    ours = fast.score(fast.encode(batch.prompts, batch.ids, batch.mask), row_index, ids, mask)
    assert_scores_close(ours, score_candidates(model, *reference, row_index, ids, mask))


def test_each_row_stops_at_its_own_limit(model, batch, reference):
    fast = FastT5(model)
    limits = [1, 4, 2, 6, 3]
    ours = fast.generate(fast.encode(batch.prompts, batch.ids, batch.mask), limits)
    full = greedy_decode(model, *reference, 6)
    assert ours.shape == (5, 6)
    for i, k in enumerate(limits):
        assert torch.equal(ours[i, :k], full[i, :k])
        assert (ours[i, k:] == model.config.pad_token_id).all()


def test_generating_a_subset_of_rows(model, batch, reference):
    fast = FastT5(model)
    rows = torch.tensor([3, 0])
    ours = fast.generate(fast.encode(batch.prompts, batch.ids, batch.mask), torch.tensor([2, 5]), rows=rows)
    full = greedy_decode(model, reference[0][rows], reference[1][rows], 5)
    assert torch.equal(ours[0, :2], full[0, :2]) and torch.equal(ours[1], full[1])


def test_batch_of_one(model, batch):
    one = [t[3:4, :1] if t.ndim == 2 else t[3:4] for t in (batch.prompts, batch.ids, batch.mask)]
    hidden, mask = encode(model, *one)
    fast = FastT5(model)
    state = fast.encode(*one)
    assert torch.equal(fast.generate(state, 5), greedy_decode(model, hidden, mask, 5))
    row_index, ids, cmask = candidates([0, 0], [2, 3], model.config.vocab_size)
    assert_scores_close(
        fast.score(state, row_index, ids, cmask), score_candidates(model, hidden, mask, row_index, ids, cmask)
    )


@pytest.mark.parametrize("cross", ["cached", "absorbed"])
def test_eos_ends_rows_and_the_loop(cross):
    model = random_t5("relu-tied", seed=3)
    batch = mixed_batch(model.config.d_model, LENGTHS, model.config.vocab_size)
    hidden, mask = encode(model, batch.prompts, batch.ids, batch.mask)
    free = greedy_decode(model, hidden, mask, 6)
    eos = int(free[1, 1])
    model.config.eos_token_id = eos  # row 1 now stops at its first eos; others may too
    try:
        ref = greedy_decode(model, hidden, mask, 6)
        fast = FastT5(model, FastOptions(cross=cross))
        ours = fast.generate(fast.encode(batch.prompts, batch.ids, batch.mask), 6)
        assert torch.equal(ours, ref)
        stop = int((free[1] == eos).nonzero()[0])  # 0 or 1
        assert ours[1, stop] == eos and (ours[1, stop + 1 :] == 0).all()
        one = fast.generate(fast.encode(batch.prompts[1:2], batch.ids[1:2], batch.mask[1:2]), 6)
        assert one.shape == (1, stop + 1)  # every row done: the loop stops early
    finally:
        model.config.eos_token_id = 1


def test_greedy_strings_on_the_tiny_backbone(backbone):
    tok = backbone.tokenizer
    enc = tok(["is a dog an animal ?", "big or small : the ocean", "a"], padding=True, return_tensors="pt")
    prompts = mixed_batch(backbone.d_model, [1, 1, 1], 10, l=4).prompts
    hidden, mask = encode(backbone.model, prompts, enc.input_ids, enc.attention_mask)
    fast = FastT5(backbone.model)
    ours = fast.generate(fast.encode(prompts, enc.input_ids, enc.attention_mask), 8)
    theirs = greedy_decode(backbone.model, hidden, mask, 8)
    assert tok.batch_decode(ours, skip_special_tokens=True) == tok.batch_decode(theirs, skip_special_tokens=True)
    assert torch.equal(ours, theirs)


def test_half_precision_with_an_fp32_wo_follows_the_reference():
    # as from_pretrained(dtype=bfloat16) loads T5: every weight bf16 except the feed-forward ``wo`` (fp32)
    model = random_t5("gated-untied").to(torch.bfloat16)
    for stack in (model.encoder, model.decoder):
        for block in stack.block:
            block.layer[-1].DenseReluDense.wo.float()
    batch = mixed_batch(model.config.d_model, LENGTHS, model.config.vocab_size)
    fast = FastT5(model)
    assert fast.warm_up(batches=[5], input_lens=[7], prompt_len=6)["verify"]["ok"]
    hidden, mask = encode(model, batch.prompts.bfloat16(), batch.ids, batch.mask)
    state = fast.encode(batch.prompts, batch.ids, batch.mask)
    torch.testing.assert_close(state.hidden.float(), hidden.float(), rtol=0.05, atol=0.05)
    row_index, ids, cmask = candidates([0, 1, 1, 4], [2, 3, 2, 3], model.config.vocab_size)
    ours = fast.score(state, row_index, ids, cmask)
    theirs = score_candidates(model, hidden, mask, row_index, ids, cmask)
    torch.testing.assert_close(ours, theirs, rtol=0.02, atol=0.5)
