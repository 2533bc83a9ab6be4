"""The one backbone fingerprint: what a family is bound to, and the check a server makes.

Identity is structural (width, vocabulary, layer counts) plus a hash of the input embedding
matrix rounded to bfloat16, so the same weights loaded in fp32 or bf16, from a hub id or a
local copy, give the same fingerprint, while another checkpoint of the same shape does not.
"""

from __future__ import annotations

import hashlib

import torch

from .errors import IncompatibleBackbone

IDENTITY_KEYS = ("d_model", "vocab_size", "num_layers", "num_decoder_layers", "embedding_sha256")


def embedding_digest(weight: torch.Tensor) -> str:
    """sha256 (first 16 hex digits) of an embedding matrix rounded to bfloat16."""
    data = weight.detach().to(device="cpu", dtype=torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def backbone_fingerprint(model: torch.nn.Module, model_id: str) -> dict:
    """Fingerprint of a Hugging Face encoder-decoder (T5 family). ``model_id`` is informational."""
    cfg = model.config
    return {
        "model_id": str(model_id),
        "model_type": getattr(cfg, "model_type", "unknown"),
        "d_model": int(cfg.d_model),
        "vocab_size": int(cfg.vocab_size),
        "num_layers": int(cfg.num_layers),
        "num_decoder_layers": int(getattr(cfg, "num_decoder_layers", None) or cfg.num_layers),
        "embedding_sha256": embedding_digest(model.get_input_embeddings().weight),
    }


def check_compatible(family_name: str, family_fp: dict, backbone_fp: dict) -> None:
    """Raise :class:`IncompatibleBackbone` when a family was trained for another backbone."""
    diffs = [
        f"{k}: family has {family_fp.get(k)!r}, backbone has {backbone_fp.get(k)!r}"
        for k in IDENTITY_KEYS
        if family_fp.get(k) != backbone_fp.get(k)
    ]
    if diffs:
        raise IncompatibleBackbone(
            f"family {family_name!r} was trained for backbone {family_fp.get('model_id')!r}, "
            f"not the loaded {backbone_fp.get('model_id')!r} ({'; '.join(diffs)})"
        )
