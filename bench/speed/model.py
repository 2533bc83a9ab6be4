"""The benchmark's backbone as the server loads one: the random-weights T5 of ``speed_setup`` saved to
a directory with a tokenizer, loaded back through ``mpt_core.backbone.load_backbone`` (the
server's loader), so the in-process engine, PEFT and the HTTP server all run the same weights.

The tokenizer is a word-level one over the model's whole vocabulary: token i is the word ``w<i>``
(0 <pad>, 1 </s>, 2 <unk>), EOS appended. Any id sequence is a text and back, so the benchmark's
random inputs become requests of exactly the intended length, and generated ids decode to words.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .setup import EOS, PAD, Shape

UNK = 2


def word_tokenizer(vocab: int):
    """A Hugging Face fast tokenizer: ``w<i>`` <-> id i for 3 <= i < vocab, EOS appended."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": PAD, "</s>": EOS, "<unk>": UNK} | {f"w{i}": i for i in range(3, vocab)}
    tok = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", EOS)])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # words joined by single spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def text_of(ids: list[int]) -> str:
    """The text whose tokenization is ``ids`` + EOS (ids without EOS or padding)."""
    return " ".join(f"w{i}" for i in ids)


def save_backbone(model: torch.nn.Module, shape: Shape, out: Path) -> Path:
    """Model (safetensors) + tokenizer in ``out``, loadable with ``load_backbone(str(out))``."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    word_tokenizer(shape.vocab).save_pretrained(out)
    config = out / "tokenizer_config.json"  # the class name every transformers 5.x resolves
    config.write_text(json.dumps(json.loads(config.read_text()) | {"tokenizer_class": "PreTrainedTokenizerFast"}))
    return out


def load(out: Path, device: torch.device, dtype: torch.dtype, attention: str | None):
    """The saved backbone through the server's own loader (same device, dtype, attention kernel)."""
    from mpt_core.backbone import load_backbone

    name = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]
    return load_backbone(str(out), device=str(device), dtype=name, attn_implementation=attention)
