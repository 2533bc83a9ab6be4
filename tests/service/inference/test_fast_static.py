"""Fixed shapes (buckets), the prepared runners compiled code and CUDA graphs run on, the
compiled path itself, the fallbacks, and the warm-up check against the reference path."""

import pytest
import torch

from mpt_core.prompted import encode, greedy_decode, score_candidates
from service.inference.fast import FastOptions, FastT5
from service.inference.fast.static import StaticRunner, bucket, round_up, steps_bucket

from ..fast_cases import candidates, mixed_batch, random_t5

LENGTHS = [7, 3, 5]


@pytest.fixture(scope="module")
def model():
    return random_t5("relu-tied")


@pytest.fixture(scope="module")
def batch(model):
    return mixed_batch(model.config.d_model, LENGTHS, model.config.vocab_size)


def counting(fast):
    """Count calls of every prepared runner (to prove the padded, fixed-shape path ran)."""
    calls = {}
    for key, runner in fast.prepared.runners.items():
        original = runner.fn

        def fn(*a, _key=key, _fn=original, **kw):
            calls[_key[0]] = calls.get(_key[0], 0) + 1
            return _fn(*a, **kw)

        runner.fn = fn
    return calls


def test_buckets():
    assert [bucket(n, (1, 2, 4, 8)) for n in (1, 3, 8, 9)] == [1, 4, 8, None]
    assert [round_up(n, 32) for n in (1, 32, 33)] == [32, 32, 64]
    assert [steps_bucket(n) for n in (1, 4, 5, 16, 17)] == [4, 4, 8, 16, 32]


@pytest.mark.parametrize("cross", ["absorbed", "cached"])
def test_padded_fixed_shapes_give_the_reference_outputs(model, batch, cross):
    fast = FastT5(model, FastOptions(static_shapes="on", cross=cross, length_step=4))
    report = fast.warm_up(batches=[3], input_lens=[7], prompt_len=6, steps=[5], candidates=[(2, 3)])
    assert report["verify"]["ok"] and not report["prepared"]["failed"]
    assert {eval(p["key"])[0] for p in report["prepared"]["prepared"]} == {"encoder", "step", "score"}
    calls = counting(fast)
    state = fast.encode(batch.prompts, batch.ids, batch.mask)  # batch 3 -> bucket 4, length 6 + 7 -> 6 + 8
    assert state.hidden.shape[:2] == (3, 14)
    hidden, mask = encode(model, batch.prompts, batch.ids, batch.mask)
    torch.testing.assert_close(state.hidden[:, :13], hidden, rtol=0, atol=1e-5)
    assert torch.equal(fast.generate(state, 5), greedy_decode(model, hidden, mask, 5))  # cache 5 -> 8 slots
    row_index, ids, cmask = candidates([0, 0, 1, 1, 2, 2], [3, 2, 3, 3, 1, 3], model.config.vocab_size)
    ours = fast.score(state, row_index, ids, cmask)
    torch.testing.assert_close(ours, score_candidates(model, hidden, mask, row_index, ids, cmask), rtol=1e-5, atol=1e-4)
    assert calls == {"encoder": 1, "step": 5, "score": 1}


def test_a_shape_not_warmed_up_runs_eagerly(model, batch):
    fast = FastT5(model, FastOptions(static_shapes="on", length_step=4))
    fast.warm_up(batches=[8], input_lens=[4], prompt_len=6, steps=[2])
    calls = counting(fast)
    hidden, mask = encode(model, batch.prompts, batch.ids, batch.mask)
    state = fast.encode(batch.prompts, batch.ids, batch.mask)
    assert torch.equal(fast.generate(state, 3), greedy_decode(model, hidden, mask, 3))
    assert calls == {} and state.hidden.shape[1] == 13  # no padding either


def test_compiled_path_on_cpu(batch):
    """torch.compile (inductor, C++ on cpu) of the encoder and of one decoder step for one bucket
    (one layer each: compile time grows with depth, the code compiled is the same)."""
    model = random_t5("relu-tied", layers=1)
    everything = dict(compile_parts=("encoder", "step"), compile_min_batch=1)
    fast = FastT5(model, FastOptions(compile="default", static_shapes="on", length_step=8, **everything))
    report = fast.warm_up(batches=[3], input_lens=[7], prompt_len=6, steps=[3])
    prepared = report["prepared"]["prepared"]
    assert [p["compiled"] for p in prepared] == [True, True], report
    calls = counting(fast)
    hidden, mask = encode(model, batch.prompts, batch.ids, batch.mask)
    assert torch.equal(
        fast.generate(fast.encode(batch.prompts, batch.ids, batch.mask), 3), greedy_decode(model, hidden, mask, 3)
    )
    assert calls == {"encoder": 1, "step": 3}


def test_a_failing_compile_falls_back(model, batch):
    everything = dict(compile_parts=("encoder", "step", "score"), compile_min_batch=1)
    fast = FastT5(model, FastOptions(static_shapes="on", length_step=8, **everything))

    def broken(**_):
        raise RuntimeError("inductor exploded")

    fast.prepared.compiled = {"encoder": broken, "step": broken, "score": broken}  # as torch.compile would fail
    report = fast.warm_up(batches=[3], input_lens=[7], prompt_len=6, steps=[3])
    assert [f["error"] for f in report["prepared"]["failed"]] == ["inductor exploded"] * 2
    assert fast.prepared.runners == {}  # no graphs on cpu: those shapes run eagerly
    hidden, mask = encode(model, batch.prompts, batch.ids, batch.mask)
    assert torch.equal(
        fast.generate(fast.encode(batch.prompts, batch.ids, batch.mask), 3), greedy_decode(model, hidden, mask, 3)
    )


def test_a_runner_differing_from_eager_is_refused(model):
    fast = FastT5(model, FastOptions(static_shapes="on", length_step=8, compile_min_batch=1))
    fast.prepared.compiled = {"encoder": lambda x, mbias, pos: x}  # "compiles" to something wrong
    assert not fast.prepared.prepare(("encoder", 2, 8), {"x": torch.randn(2, 8, 32), "mbias": torch.zeros(2, 1, 1, 8),
                                                         "pos": fast.encoder_position_bias(8)})  # fmt: skip
    assert "differs from the eager path" in fast.prepared.report["failed"][0]["error"]


def test_runner_loads_a_smaller_batch_into_leading_rows():
    runner = StaticRunner(lambda a, kv: a.sum(1) + kv.sum((0, 2)), {"a": torch.zeros(4, 3), "kv": torch.zeros(2, 4, 5)},
                          graph=False, batch_dims={"kv": 1})  # fmt: skip
    runner.load(a=torch.ones(2, 3), kv=torch.ones(2, 2, 5))
    assert runner().tolist() == [13.0, 13.0, 0.0, 0.0]


def test_warm_up_falls_back_to_the_reference_path_when_the_fast_path_disagrees(batch):
    model = random_t5("relu-tied")
    fast = FastT5(model)
    fast.w.logit_scale = None  # as if a transformers release changed what scales the logits
    report = fast.warm_up(batches=[3], input_lens=[7], prompt_len=6)
    assert not report["verify"]["ok"] and fast.use_reference
    hidden, mask = encode(model, batch.prompts, batch.ids, batch.mask)
    state = fast.encode(batch.prompts, batch.ids, batch.mask)
    assert torch.equal(fast.generate(state, 4), greedy_decode(model, hidden, mask, 4))
    row_index, ids, cmask = candidates([0, 1, 1], [2, 3, 2], model.config.vocab_size)
    ours = fast.score(state, row_index, ids, cmask)
    assert torch.equal(ours, score_candidates(model, hidden, mask, row_index, ids, cmask))


def test_the_compile_budget_bounds_compiling_not_preparing(model, batch):
    """Past max_compile_s, shapes still get prepared runners, of the eager code (CUDA graphs on a GPU);
    the largest batch is compiled first, as it gains the most from it."""
    fast = FastT5(model, FastOptions(static_shapes="on", length_step=8, compile_min_batch=1, max_compile_s=0.01))
    eager = fast.prepared.eager["encoder"]
    compiled_calls = []

    def slow_compiled(**kw):  # a "compiled" encoder that takes longer to prepare than the budget
        compiled_calls.append(kw["x"].shape[0])
        __import__("time").sleep(0.02)
        return eager(**kw)

    fast.prepared.compiled = {"encoder": slow_compiled, "step": slow_compiled, "score": slow_compiled}
    report = fast.warm_up(batches=[1, 2, 4], input_lens=[7], prompt_len=6)["prepared"]
    by_key = {p["key"]: p["compiled"] for p in report["prepared"]}
    assert by_key == {str(("encoder", 4, 14)): True, str(("encoder", 2, 14)): False, str(("encoder", 1, 14)): False}
    assert report["skipped"] == [str(("encoder", 2, 14)), str(("encoder", 1, 14))] and set(compiled_calls) == {4}
    hidden, _ = encode(model, batch.prompts, batch.ids, batch.mask)
    state = fast.encode(batch.prompts, batch.ids, batch.mask)  # through the (4, 14) runner: padded to the bucket
    assert state.hidden.shape[1] == 14 and not state.mask[:, hidden.shape[1] :].any()
    torch.testing.assert_close(state.hidden[:, : hidden.shape[1]], hidden, rtol=0, atol=1e-5)
