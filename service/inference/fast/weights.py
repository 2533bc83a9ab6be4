"""The backbone's weights, read once from a Hugging Face ``T5ForConditionalGeneration``.

Only the module structure is relied on (``shared``, ``encoder.block[i].layer[j]`` with
``SelfAttention`` / ``EncDecAttention`` q/k/v/o, ``relative_attention_bias`` in block 0,
``DenseReluDense`` wi or wi_0/wi_1 + wo, layer norms, ``final_layer_norm``, ``lm_head``): it is
stable across transformers 5.x, unlike the forward's masks and cache classes. Tensors are the
module's own parameters (no copy) except the fused projections, which are concatenated once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class FeedForward:
    wi: torch.Tensor  # (f, d), or (2f, d) = [wi_0; wi_1] when gated
    wo: torch.Tensor  # (d, f)
    act: Callable[[torch.Tensor], torch.Tensor]  # the module's own activation (exact numerics)
    gated: bool
    relu: bool  # plain relu: applied in place


@dataclass
class EncoderLayer:
    ln_attn: torch.Tensor  # (d,)
    wqkv: torch.Tensor  # (3·inner, d)
    wo: torch.Tensor  # (d, inner)
    ln_ff: torch.Tensor  # (d,)
    ff: FeedForward


@dataclass
class DecoderLayer:
    ln_self: torch.Tensor  # (d,)
    wqkv: torch.Tensor  # (3·inner, d)
    wo_self: torch.Tensor  # (d, inner)
    ln_cross: torch.Tensor  # (d,)
    wq_cross: torch.Tensor  # (inner, d)
    wk_cross: torch.Tensor  # (H, dk, d) views of the module's k and v weights, per head
    wv_cross: torch.Tensor  # (H, dk, d)
    wo_cross: torch.Tensor  # (d, inner)
    ln_ff: torch.Tensor  # (d,)
    ff: FeedForward


@dataclass
class T5Weights:
    d: int
    heads: int
    d_kv: int
    eps: float
    num_buckets: int
    max_distance: int
    embed: torch.Tensor  # (V, d)
    enc_bias_table: torch.Tensor  # (num_buckets, H) relative attention bias of encoder block 0
    enc: list[EncoderLayer]
    enc_final_ln: torch.Tensor  # (d,)
    dec_bias_table: torch.Tensor  # (num_buckets, H)
    dec: list[DecoderLayer]
    cross_kv: torch.Tensor  # (layers·2·inner, d): every decoder layer's cross-attention k and v, one matmul
    dec_final_ln: torch.Tensor  # (d,)
    lm_head: torch.Tensor  # (V, d)
    logit_scale: float | None  # d ** -0.5 when the decoder output is scaled before lm_head (original T5)
    start_id: int
    pad_id: int
    eos_id: int

    @property
    def inner(self) -> int:
        return self.heads * self.d_kv

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.dtype

    @property
    def device(self) -> torch.device:
        return self.embed.device


def _feed_forward(layer_ff: torch.nn.Module, gated: bool) -> FeedForward:
    drd = layer_ff.DenseReluDense
    if gated:
        wi = torch.cat([drd.wi_0.weight, drd.wi_1.weight], dim=0)
    else:
        wi = drd.wi.weight
    relu = isinstance(drd.act, torch.nn.ReLU)
    return FeedForward(wi=wi, wo=drd.wo.weight, act=drd.act, gated=gated, relu=relu)


def _qkv(attn: torch.nn.Module) -> torch.Tensor:
    return torch.cat([attn.q.weight, attn.k.weight, attn.v.weight], dim=0)  # (3·inner, d)


def scales_decoder_output(config) -> bool:
    """Original T5 scales the decoder output by d_model ** -0.5 before lm_head, v1.1 does not.

    transformers >= 5.x records it as ``scale_decoder_outputs``; older 5.x releases read
    ``tie_word_embeddings`` for it."""
    flag = getattr(config, "scale_decoder_outputs", None)
    return bool(config.tie_word_embeddings if flag is None else flag)


def _eos(config) -> int:
    eos = config.eos_token_id
    return int(eos[0] if isinstance(eos, (list, tuple)) else eos)


def read_weights(model: torch.nn.Module) -> T5Weights:
    """Everything the fast forward needs; raises ValueError for a model it cannot run."""
    cfg = model.config
    if not getattr(cfg, "is_encoder_decoder", False) or not hasattr(model, "encoder"):
        raise ValueError(f"{type(model).__name__} is not a T5-style encoder-decoder")
    gated = bool(getattr(cfg, "is_gated_act", False))
    enc_blocks, dec_blocks = model.encoder.block, model.decoder.block
    heads, d_kv = int(cfg.num_heads), int(cfg.d_kv)
    enc = []
    for blk in enc_blocks:
        sa, ff = blk.layer[0], blk.layer[-1]
        enc.append(
            EncoderLayer(
                sa.layer_norm.weight,
                _qkv(sa.SelfAttention),
                sa.SelfAttention.o.weight,
                ff.layer_norm.weight,
                _feed_forward(ff, gated),
            )
        )
    dec, cross = [], []
    for blk in dec_blocks:
        sa, ca, ff = blk.layer[0], blk.layer[1], blk.layer[-1]
        dec.append(
            DecoderLayer(
                sa.layer_norm.weight,
                _qkv(sa.SelfAttention),
                sa.SelfAttention.o.weight,
                ca.layer_norm.weight,
                ca.EncDecAttention.q.weight,
                ca.EncDecAttention.k.weight.view(heads, d_kv, -1),
                ca.EncDecAttention.v.weight.view(heads, d_kv, -1),
                ca.EncDecAttention.o.weight,
                ff.layer_norm.weight,
                _feed_forward(ff, gated),
            )
        )
        cross += [ca.EncDecAttention.k.weight, ca.EncDecAttention.v.weight]
    enc_attn0 = enc_blocks[0].layer[0].SelfAttention
    dec_attn0 = dec_blocks[0].layer[0].SelfAttention
    return T5Weights(
        d=int(cfg.d_model),
        heads=heads,
        d_kv=d_kv,
        eps=float(cfg.layer_norm_epsilon),
        num_buckets=int(cfg.relative_attention_num_buckets),
        max_distance=int(cfg.relative_attention_max_distance),
        embed=model.get_input_embeddings().weight,
        enc_bias_table=enc_attn0.relative_attention_bias.weight,
        enc=enc,
        enc_final_ln=model.encoder.final_layer_norm.weight,
        dec_bias_table=dec_attn0.relative_attention_bias.weight,
        dec=dec,
        cross_kv=torch.cat(cross, dim=0),
        dec_final_ln=model.decoder.final_layer_norm.weight,
        lm_head=model.lm_head.weight,
        logit_scale=float(cfg.d_model) ** -0.5 if scales_decoder_output(cfg) else None,
        start_id=int(cfg.decoder_start_token_id),
        pad_id=int(cfg.pad_token_id),
        eos_id=_eos(cfg),
    )
