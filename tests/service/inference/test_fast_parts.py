"""The fast path's parts on their own: options validation and per-device defaults, the position
bias against Hugging Face's, and the weights it reads from each T5 variant."""

import pytest
import torch

from service.inference.fast import FastOptions
from service.inference.fast.cross import absorbed_wins
from service.inference.fast.position import causal_bias, position_bias
from service.inference.fast.weights import read_weights

from ..fast_cases import random_t5


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"attention": "flash"}, "'flash'"),
        ({"cross": "both"}, "'both'"),
        ({"compile": "fast"}, "'fast'"),
        ({"static_shapes": "yes"}, "'yes'"),
        ({"batch_buckets": (4, 2)}, "(4, 2)"),
        ({"length_step": 0}, "length_step=0"),
        ({"graph_max_batch": -1}, "graph_max_batch=-1"),
    ],
)
def test_bad_options_are_refused_naming_the_value(kwargs, named):
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(")", r"\)")):
        FastOptions(**kwargs)


def test_per_device_defaults():
    cpu = FastOptions().resolved(torch.device("cpu"))
    assert (cpu.attention, cpu.compile, cpu.cuda_graphs, cpu.static, cpu.pin_memory) == (
        "eager",
        "off",
        False,
        False,
        False,
    )
    cuda = FastOptions().resolved(torch.device("cuda"))
    assert (cuda.compile, cuda.cuda_graphs, cuda.static, cuda.pin_memory) == ("default", True, True, True)
    assert not FastOptions(compile="off", cuda_graphs=False).resolved(torch.device("cuda")).static
    assert FastOptions(attention="sdpa").resolved(torch.device("cpu")).attention == "sdpa"


@pytest.mark.parametrize("decoder", [False, True])
def test_position_bias_equals_hugging_faces(decoder):
    model = random_t5("relu-tied")
    stack = model.decoder if decoder else model.encoder
    attn = stack.block[0].layer[0].SelfAttention
    with torch.no_grad():
        torch.nn.init.normal_(attn.relative_attention_bias.weight)
        theirs = attn.compute_bias(5, 40)  # (1, H, 5, 40), queries 0..4
        ours = position_bias(
            attn.relative_attention_bias.weight, 5, 40, not decoder, model.config.relative_attention_max_distance
        )
    assert torch.equal(ours, theirs)


def test_causal_bias_masks_the_future():
    table = torch.randn(8, 2)
    bias = causal_bias(table, 4, 16)  # (1, H, 4, 4)
    probs = torch.softmax(bias, -1)
    assert torch.equal(probs.triu(1), torch.zeros_like(probs)) and torch.allclose(probs.sum(-1), torch.ones(1, 2, 4))


@pytest.mark.parametrize("variant", ["relu-tied", "gated-untied"])
def test_weights_are_the_modules_own(variant):
    model = random_t5(variant)
    w = read_weights(model)
    assert len(w.enc) == 2 and len(w.dec) == model.config.num_decoder_layers
    assert w.dec[0].ff.gated == (variant == "gated-untied") and w.dec[0].ff.relu == (variant == "relu-tied")
    assert (w.logit_scale is not None) == (variant == "relu-tied")
    assert w.embed.data_ptr() == model.shared.weight.data_ptr()  # no copy of the big tensors
    assert w.lm_head.data_ptr() == model.lm_head.weight.data_ptr()
    assert w.dec[1].wk_cross.data_ptr() == model.decoder.block[1].layer[1].EncDecAttention.k.weight.data_ptr()


def test_absorbed_cross_attention_wins_only_for_few_queries():
    w = read_weights(random_t5("relu-tied", d=512))  # d 512, 4 heads of 128, L = 115: break-even at ~68 queries
    assert absorbed_wins(w, 3, 115) and absorbed_wins(w, 60, 115)
    assert not absorbed_wins(w, 80, 115)
