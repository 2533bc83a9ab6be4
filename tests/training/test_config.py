"""Training settings: built by keyword only, checked once, with messages that name the bad value."""

import pytest

from training.config import AdaptConfig, DistillConfig, PromptConfig, TinyConfig, TrainConfig


@pytest.mark.parametrize("cls", [TrainConfig, PromptConfig, DistillConfig, AdaptConfig, TinyConfig])
def test_configs_are_built_by_keyword_only(cls):
    with pytest.raises(TypeError, match="positional"):
        cls(1)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: TrainConfig(schedule="cosine"), "schedule='cosine' must be one of linear, constant"),
        (lambda: TrainConfig(lr=float("nan")), "lr=nan must be a positive number"),
        (lambda: TrainConfig(eval_every=-1), "eval_every=-1 must be >= 0"),
        (lambda: TrainConfig(batch_size=0), "batch_size=0 must be >= 1"),
        (lambda: PromptConfig(init="zeros"), "init='zeros' must be one of random, vocab"),
        (lambda: PromptConfig(prompt_length=0), "prompt_length=0 must be >= 1"),
        (lambda: DistillConfig(hidden="middle"), "hidden='middle' must be one of decoder, encoder, both"),
        (lambda: DistillConfig(lam=-1.0), "lambda=-1.0 must be >= 0"),
        (lambda: DistillConfig(decompose=False, rank=2), "rank=2 must stay 1"),
        (lambda: AdaptConfig(mode="lora"), "mode='lora' must be one of factors, full, group, prompt"),
        (lambda: AdaptConfig(mode="group"), "give --new-family NAME"),
        (lambda: AdaptConfig(factor_init="Bad Name"), "invalid task name 'Bad Name'"),
        (lambda: TinyConfig(d_model=30), "d_model=30 must be a positive multiple of heads=4"),
    ],
)
def test_a_bad_setting_names_its_value(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()
