"""Loading the frozen backbone (a Hugging Face T5-family model) and its tokenizer."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from prompts_store import backbone_fingerprint

class BackboneError(RuntimeError):
    """The backbone could not be loaded or is not an encoder-decoder."""


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode (no dropout) and no gradients for any backbone weight."""
    model.eval()
    model.requires_grad_(False)
    return model


@dataclass
class Backbone:
    model: torch.nn.Module
    tokenizer: object
    model_id: str
    device: torch.device

    @functools.cached_property
    def fingerprint(self) -> dict:
        return backbone_fingerprint(self.model, self.model_id)

    @property
    def d_model(self) -> int:
        return int(self.model.config.d_model)

    @property
    def dtype(self) -> torch.dtype:
        return self.model.get_input_embeddings().weight.dtype


def load_backbone(model_id: str, device: str = "auto", dtype: str = "float32") -> Backbone:
    """Load model + tokenizer from a hub id or a local directory, frozen, on ``device``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {sorted(DTYPES)}")
    hf_logging.disable_progress_bar()
    looks_local = os.path.isabs(model_id) or model_id.startswith(("./", "../", "~"))
    if looks_local and not os.path.isdir(os.path.expanduser(model_id)):
        raise BackboneError(f"backbone directory {model_id!r} does not exist")
    dev = resolve_device(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        model = AutoModelForSeq2SeqLM.from_pretrained(model_id, dtype=DTYPES[dtype])
    except OSError as e:
        raise BackboneError(
            f"cannot load backbone {model_id!r}: {e}\n"
            "Give a local directory holding a saved model and tokenizer (e.g. one made by `mpt backbone tiny`)."
        ) from None
    if not getattr(model.config, "is_encoder_decoder", False):
        raise BackboneError(f"backbone {model_id!r} is not an encoder-decoder model (T5 family expected)")
    return Backbone(freeze(model.to(dev)), tokenizer, str(model_id), dev)
