"""``mpt backbone tiny``: a small random T5 and a freshly trained tokenizer, saved with
``save_pretrained`` so that the normal loading path (``from_pretrained`` on a directory) serves
them exactly like a hub checkpoint. For tests, demos and offline labs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer
from transformers.utils import logging as hf_logging

from .config import TinyConfig

__all__ = ["SPECIALS", "TinyConfig", "build_tiny_backbone", "builtin_corpus", "train_tokenizer"]

SPECIALS = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2 as in T5


def builtin_corpus() -> list[str]:
    return resources.files("training").joinpath("tiny_corpus.txt").read_text().splitlines()


def train_tokenizer(lines: Iterable[str], vocab_size: int, extra_ids: int) -> T5Tokenizer:
    """A Unigram (SentencePiece-style) tokenizer in T5's layout: pad=0, eos=1, unk=2, then pieces, then sentinels."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size - extra_ids, special_tokens=SPECIALS, unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(list(lines), trainer)
    vocab = [tuple(piece) for piece in json.loads(tok.to_str())["model"]["vocab"]]
    return T5Tokenizer(vocab=vocab, extra_ids=extra_ids)


def build_tiny_backbone(out: str | Path, cfg: TinyConfig, lines: Iterable[str] | None = None) -> Path:
    """Build and save a random T5 + tokenizer in ``out``; returns the directory."""
    out = Path(out)
    tokenizer = train_tokenizer(builtin_corpus() if lines is None else lines, cfg.vocab_size, cfg.extra_ids)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=cfg.d_model,
        d_kv=cfg.d_model // cfg.heads,
        d_ff=cfg.d_ff or 2 * cfg.d_model,
        num_layers=cfg.layers,
        num_decoder_layers=cfg.layers,
        num_heads=cfg.heads,
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,  # as the original T5: output logits scaled by d_model ** -0.5
    )
    hf_logging.disable_progress_bar()
    torch.manual_seed(cfg.seed)
    model = T5ForConditionalGeneration(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
