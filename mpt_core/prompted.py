"""A frozen encoder-decoder (Hugging Face T5 family, duck-typed) run with task prompts.

The forward pass used for training, greedy decoding and candidate scoring: training,
evaluation and the server all call these, so a prompt means the same thing everywhere.
Only torch is imported here; ``model`` is any ``T5ForConditionalGeneration``-like module.
"""

from __future__ import annotations

import functools
import inspect

import torch

from .compose import inject


def shift_right(labels: torch.Tensor, start_id: int, pad_id: int) -> torch.Tensor:
    """Decoder inputs for teacher forcing: ``[start, y_0 .. y_{m-2}]``, with -100 read as pad."""
    out = labels.new_full(labels.shape, pad_id)
    out[:, 1:] = labels[:, :-1].masked_fill(labels[:, :-1] == -100, pad_id)
    out[:, 0] = start_id
    return out


def embed_prompted(
    model: torch.nn.Module, prompts: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input embeddings with the prompts prepended: (B, l + n, d), (B, l + n)."""
    embeds = model.get_input_embeddings()(input_ids)  # (B, n, d)
    return inject(prompts, embeds, attention_mask)


def prompted_forward(
    model: torch.nn.Module,
    prompts: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    output_hidden_states: bool = False,
):
    """Teacher-forced forward; returns the model output (``logits`` (B, m, V), hidden states on request)."""
    embeds, mask = embed_prompted(model, prompts, input_ids, attention_mask)
    cfg = model.config
    return model(
        inputs_embeds=embeds,
        attention_mask=mask,
        decoder_input_ids=shift_right(labels, cfg.decoder_start_token_id, cfg.pad_token_id),
        output_hidden_states=output_hidden_states,
        use_cache=False,
    )


def encode(
    model: torch.nn.Module, prompts: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the encoder once: hidden (B, l + n, d) and its attention mask (B, l + n)."""
    embeds, mask = embed_prompted(model, prompts, input_ids, attention_mask)
    hidden = model.get_encoder()(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
    return hidden, mask


@functools.cache
def _cache_kwarg(model_type: type) -> str:
    # transformers 5.x renamed ``past_key_values`` to ``cache`` in some releases; accept both.
    return "cache" if "cache" in inspect.signature(model_type.forward).parameters else "past_key_values"


def _eos_id(cfg) -> int:
    eos = cfg.eos_token_id
    return eos[0] if isinstance(eos, (list, tuple)) else eos


@torch.no_grad()
def greedy_decode(
    model: torch.nn.Module, hidden: torch.Tensor, mask: torch.Tensor, max_new_tokens: int
) -> torch.Tensor:
    """Greedy decoding from encoder states; returns (B, m) token ids, pad after each row's EOS."""
    cfg = model.config
    eos, pad = _eos_id(cfg), cfg.pad_token_id
    batch = hidden.shape[0]
    step_ids = torch.full((batch, 1), cfg.decoder_start_token_id, dtype=torch.long, device=hidden.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=hidden.device)
    cache_kw, cache, produced = _cache_kwarg(type(model)), None, []
    for _ in range(max_new_tokens):
        out = model(
            encoder_outputs=(hidden,),
            attention_mask=mask,
            decoder_input_ids=step_ids,
            use_cache=True,
            **{cache_kw: cache},
        )
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        nxt = out.logits[:, -1].argmax(-1).masked_fill(finished, pad)  # (B,)
        produced.append(nxt)
        finished |= nxt == eos
        if bool(finished.all()):
            break
        step_ids = nxt[:, None]
    if not produced:
        return torch.empty(batch, 0, dtype=torch.long, device=hidden.device)
    return torch.stack(produced, dim=1)


@torch.no_grad()
def score_candidates(
    model: torch.nn.Module,
    hidden: torch.Tensor,
    mask: torch.Tensor,
    row_index: torch.Tensor,
    candidate_ids: torch.Tensor,
    candidate_mask: torch.Tensor,
) -> torch.Tensor:
    """Log-likelihood of candidate strings, one decoder pass for all (row, candidate) pairs.

    hidden, mask:   (B, L, d), (B, L) encoder states of the batch rows
    row_index:      (P,) which batch row each pair belongs to
    candidate_ids:  (P, m) candidate token ids (ending in EOS), right-padded
    candidate_mask: (P, m) 1 on real tokens
    returns         (P,) float32 sum of token log-probabilities
    """
    cfg = model.config
    dec_in = shift_right(candidate_ids, cfg.decoder_start_token_id, cfg.pad_token_id)
    out = model(
        encoder_outputs=(hidden[row_index],), attention_mask=mask[row_index], decoder_input_ids=dec_in, use_cache=False
    )
    logp = out.logits.float().log_softmax(-1)  # (P, m, V)
    tok = logp.gather(-1, candidate_ids.unsqueeze(-1)).squeeze(-1)  # (P, m)
    return (tok * candidate_mask.to(tok.dtype)).sum(-1)
