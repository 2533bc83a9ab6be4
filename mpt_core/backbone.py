"""The frozen backbone: the one device/dtype resolution and the one loader, used by training and
serving alike (so ``service`` needs nothing from ``training`` to load a model).

Importing this module needs only torch; transformers is imported when a backbone is loaded.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch

from .fingerprint import backbone_fingerprint

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ATTENTION = ("eager", "sdpa")


class BackboneError(RuntimeError):
    """The backbone could not be loaded, or is not an encoder-decoder."""


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` is cuda when a GPU is visible, else cpu; anything else is a torch device string."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(spec)
    except RuntimeError:
        raise BackboneError(f"device {spec!r} is not a device: use auto, cpu, cuda or cuda:N") from None


def resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    """``auto`` is bfloat16 on cuda and float32 elsewhere; else one of :data:`DTYPES`."""
    if spec == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if spec not in DTYPES:
        raise BackboneError(f"dtype {spec!r} is not one of auto, {', '.join(DTYPES)}")
    return DTYPES[spec]


@dataclass
class Backbone:
    """A frozen encoder-decoder (eval mode, no gradients) and its tokenizer."""

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


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode (no dropout) and no gradients for any backbone weight."""
    model.eval()
    model.requires_grad_(False)
    return model


def load_backbone(
    model_id: str, device: str = "auto", dtype: str = "auto", attn_implementation: str | None = None
) -> Backbone:
    """Model + tokenizer from a hub id or a local directory, frozen, on the resolved device/dtype.
    The weights must be safetensors: a pickled checkpoint (``pytorch_model.bin``) is refused."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if attn_implementation is not None and attn_implementation not in ATTENTION:
        raise BackboneError(f"attention {attn_implementation!r} is not one of {', '.join(ATTENTION)}")
    hf_logging.disable_progress_bar()
    looks_local = os.path.isabs(model_id) or model_id.startswith(("./", "../", "~"))
    if looks_local and not os.path.isdir(os.path.expanduser(model_id)):
        raise BackboneError(f"backbone directory {model_id!r} does not exist")
    dev = resolve_device(device)
    # weights only from safetensors: a pytorch_model.bin is a pickle, and unpickling runs code
    kwargs = {"dtype": resolve_dtype(dtype, dev), "use_safetensors": True}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        model = AutoModelForSeq2SeqLM.from_pretrained(model_id, **kwargs)
    except (OSError, ValueError) as e:
        raise BackboneError(
            f"cannot load backbone {model_id!r}: {e}\n"
            "Give a local directory holding a saved model and tokenizer (e.g. one made by `mpt backbone tiny`)."
        ) from None
    if not getattr(model.config, "is_encoder_decoder", False):
        raise BackboneError(f"backbone {model_id!r} is not an encoder-decoder model (T5 family expected)")
    return Backbone(freeze(model.to(dev)), tokenizer, str(model_id), dev)
