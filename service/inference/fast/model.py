"""``FastT5``: the serving engine's fast forward over a loaded Hugging Face T5.

    fast = FastT5(model, FastOptions())           # once, after the backbone is loaded
    fast.warm_up(batches=[1, 32], input_lens=[32], prompt_len=100, steps=[16], candidates=[(2, 2)])
    state = fast.encode(prompts, ids, mask)       # (B, l, d), (B, n), (B, n)
    tokens = fast.generate(state, limits)         # int or (B,) max new tokens per row -> (B, T) ids
    scores = fast.score(state, row_index, cand_ids, cand_mask)  # (P,) log-likelihoods

Same numbers as ``mpt_core.prompted`` (encode + greedy_decode / score_candidates): the tests
hold greedy ids identical and scores within 1e-4 in fp32. Not thread-safe: one batch at a time
(the engine's batch worker), as prepared runners own their buffers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from .cross import CrossAttention, absorbed_wins
from .decoder import SelfCache, decoder_step, greedy
from .encoder import cross_kv, embed_prompted, encoder_bias, encoder_stack
from .ops import ATTEND, mask_bias
from .options import FastOptions
from .position import BiasCache, causal_bias, position_bias
from .prepared import Prepared
from .reference import Reference
from .scoring import candidate_layout, score_rows
from .static import bucket, pad_rows, round_up, steps_bucket
from .weights import read_weights

log = logging.getLogger("mpt.fast")


@dataclass
class Encoded:
    """One batch after the encoder: what generation and scoring read."""

    hidden: torch.Tensor  # (B, L, d) encoder states
    mask: torch.Tensor  # (B, L) 1 on prompt + input tokens
    cross_bias: torch.Tensor  # (B, 1, 1, L) 0 / dtype-min
    kv: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)  # cross K/V, made on demand

    @property
    def batch(self) -> int:
        return self.hidden.shape[0]

    def rows(self, index: torch.Tensor | None) -> Encoded:
        """The same batch restricted to rows ``index`` (None: all)."""
        if index is None:
            return self
        kv = None if self.kv is None else (self.kv[0][:, index], self.kv[1][:, index])
        return Encoded(self.hidden[index], self.mask[index], self.cross_bias[index], kv)


class FastT5:
    def __init__(self, model: torch.nn.Module, options: FastOptions | None = None):
        self.w = read_weights(model)
        self.device, self.dtype = self.w.device, self.w.dtype
        self.options = (options or FastOptions()).resolved(self.device)
        self.attend = ATTEND[self.options.attention]
        self._biases = BiasCache()
        self.prepared = Prepared(self.w, self.attend, self.options) if self.options.static else None
        self.reference = Reference(model)  # the slow path this one must agree with; served if verify fails
        self.use_reference = False

    # ---- biases, once per shape --------------------------------------------------------------
    def encoder_position_bias(self, length: int) -> torch.Tensor:
        w = self.w
        return self._biases.get(
            ("enc", length), lambda: position_bias(w.enc_bias_table, length, length, True, w.max_distance)
        )

    def causal_bias(self, length: int) -> torch.Tensor:
        w = self.w
        return self._biases.get(("dec", length), lambda: causal_bias(w.dec_bias_table, length, w.max_distance))

    def absorbed(self, queries: int, length: int) -> bool:
        """Cross-attention without K/V for ``queries`` decoder positions per row (options.cross)."""
        mode = self.options.cross
        return mode == "absorbed" or (mode == "auto" and absorbed_wins(self.w, queries, length))

    def _kv(self, state: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        if state.kv is None:
            state.kv = cross_kv(self.w, state.hidden)
        return state.kv

    def stage(self, t: torch.Tensor) -> torch.Tensor:
        """A host tensor on the device: through pinned memory, non-blocking, on cuda."""
        if t.device == self.device:
            return t
        if self.options.pin_memory and t.device.type == "cpu":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)

    # ---- the engine-facing surface ---------------------------------------------------------
    @torch.inference_mode()
    def encode(self, prompts: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Encoded:
        """prompts (B, l, d), input_ids/attention_mask (B, n) -> the batch's encoder state."""
        ids, mask = self.stage(input_ids), self.stage(attention_mask)
        prompts = self.stage(prompts).to(self.dtype)
        if self.use_reference:
            hidden, mask = self.reference.encode(prompts, ids, mask)
            return Encoded(hidden, mask, mask_bias(mask, self.dtype))
        (B, n), l = ids.shape, prompts.shape[1]
        runner = None
        if self.prepared is not None and (Bb := bucket(B, self.options.batch_buckets)) is not None:
            nb = round_up(n, self.options.length_step)
            runner = self.prepared.get(("encoder", Bb, l + nb))
        if runner is not None:  # pad rows and length to the bucket: masked positions change nothing
            ids = pad_rows(torch.nn.functional.pad(ids, (0, nb - n), value=self.w.pad_id), Bb, self.w.pad_id)
            mask = pad_rows(torch.nn.functional.pad(mask, (0, nb - n)), Bb)
            prompts = pad_rows(prompts, Bb)
        x, mask = embed_prompted(self.w, prompts, ids, mask)  # (B, L, d), (B, L)
        mbias, pos = mask_bias(mask, self.dtype), self.encoder_position_bias(x.shape[1])
        if runner is not None:
            runner.load(x=x, mbias=mbias)  # pos is the bucket's, loaded when it was prepared
            hidden = runner()[:B].clone()  # the runner's output buffer is overwritten by its next call
            return Encoded(hidden, mask[:B], mbias[:B])
        bias = encoder_bias(pos, mbias, padded=not bool(mask.all()), summed=self.options.attention == "sdpa")
        return Encoded(encoder_stack(self.w, x, bias, self.attend), mask, mbias)

    @torch.inference_mode()
    def generate(self, state: Encoded, max_new_tokens, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Greedy ids (G, T) for ``rows`` (default all), pad after EOS and past each row's limit.

        max_new_tokens: an int for every row, or one per generated row (sequence or (G,) tensor)."""
        st = state.rows(rows)
        limits = torch.as_tensor(max_new_tokens, dtype=torch.long).to(self.device)
        limits = limits.expand(st.batch).contiguous() if limits.ndim == 0 else limits
        if limits.shape != (st.batch,):
            raise ValueError(f"max_new_tokens has shape {tuple(limits.shape)}, expected ({st.batch},)")
        steps = int(limits.max()) if st.batch else 0
        if steps <= 0:
            return torch.full((st.batch, 0), self.w.pad_id, dtype=torch.long, device=self.device)
        if self.use_reference:
            return self.reference.generate(st.hidden, st.mask, limits)
        B, L = st.batch, st.hidden.shape[1]
        if self.prepared is not None and (Bb := bucket(B, self.options.batch_buckets)) is not None:
            T = steps_bucket(steps)
            absorbed = self.absorbed(T, L)
            runner = self.prepared.get(("step", Bb, L, T, absorbed))
            if runner is not None:
                runner.load(states=st.hidden, cross_bias=st.cross_bias, **self._kv_inputs(st, absorbed))
                tok_buf, t_buf = runner.buffers["tok"], runner.buffers["t"]

                def step(tok: torch.Tensor, t: int) -> torch.Tensor:
                    tok_buf[:B].copy_(tok)
                    t_buf.fill_(t)
                    return runner()[:B]

                return greedy(self.w, step, limits)
        cache = SelfCache.empty(self.w, B, steps, self.dtype)
        self_bias, positions = self.causal_bias(steps), torch.arange(steps, device=self.device)
        kv = None if self.absorbed(steps, L) else self._kv(st)
        cross = CrossAttention(self.w, self.attend, st.hidden, st.cross_bias, kv)

        def step(tok: torch.Tensor, t: int) -> torch.Tensor:
            return decoder_step(self.w, self.attend, tok, positions[t : t + 1], t + 1, cache, cross, self_bias)

        return greedy(self.w, step, limits)

    def _kv_inputs(self, st: Encoded, absorbed: bool) -> dict[str, torch.Tensor]:
        if absorbed:
            return {}
        k, v = self._kv(st)
        return {"k_cross": k, "v_cross": v}  # (layers, B, H, L, dk): the runner loads them along dim 1

    @torch.inference_mode()
    def score(
        self, state: Encoded, row_index: torch.Tensor, cand_ids: torch.Tensor, cand_mask: torch.Tensor
    ) -> torch.Tensor:
        """Log-likelihood of candidate strings: row_index (P,) batch row of each (row, candidate)
        pair, cand_ids/cand_mask (P, m) right-padded candidate ids ending in EOS -> (P,) float32."""
        row_index, cand_ids, cand_mask = (self.stage(torch.as_tensor(t)) for t in (row_index, cand_ids, cand_mask))
        if self.use_reference:
            return self.reference.score(state.hidden, state.mask, row_index, cand_ids, cand_mask)
        rows, pair_row, pair_slot, ids, msk = candidate_layout(row_index, cand_ids, cand_mask, self.w.pad_id)
        st = state if state.batch == rows.shape[0] else state.rows(rows)  # rows is sorted: R == B means all
        (R, C, m), L = ids.shape, st.hidden.shape[1]
        absorbed = self.absorbed(1 + C * (m - 1), L)
        if self.prepared is not None and (Rb := bucket(R, self.options.batch_buckets)) is not None:
            runner = self.prepared.get(("score", Rb, C, m, L, absorbed))
            if runner is not None:
                kv = self._kv_inputs(st, absorbed)
                runner.load(states=st.hidden, cross_bias=st.cross_bias, ids=ids, msk=msk, **kv)
                return runner()[:R][pair_row, pair_slot]
        kv = None if absorbed else self._kv(st)
        cross = CrossAttention(self.w, self.attend, st.hidden, st.cross_bias, kv)
        return score_rows(self.w, self.attend, cross, self.causal_bias(m), ids, msk)[pair_row, pair_slot]

    # ---- warm-up -----------------------------------------------------------------------------
    def warm_up(self, batches, input_lens, prompt_len: int, steps=(), candidates=(), check: bool = True) -> dict:
        """Verify against the reference path, prepare compiled / graphed shapes, run each once.

        batches, input_lens: the batch sizes and input token counts to prepare (each rounds up to its
        bucket); prompt_len: the families' l; steps: max_new_tokens values; candidates: (C, m) pairs
        (candidates per row, tokens per candidate); check: verify first (once is enough when warming
        up several prompt lengths). Returns a report (what was prepared, failures, time)."""
        from .warmup import warm_up

        return warm_up(self, batches, input_lens, prompt_len, steps, candidates, check)

    def verify(self) -> dict:
        """Check the fast path against the reference path; on a mismatch serve through the reference."""
        from .warmup import verify

        return verify(self)
