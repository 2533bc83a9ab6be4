"""The inference engine: ONE frozen backbone reading the resident prompt table, and the batched
forward that turns a micro-batch of rows into final answers. Runs on the batcher's worker thread,
never on the event loop.

``run(rows) -> results`` goes through three named stages (after infinity's batch handler):

    _preprocess_batch   group rows by prompt length, compose each group's prompts with one
                        gather (one hold of the table's lock), pad the inputs once
    _core_batch         encode once, then greedy decoding and/or candidate scoring
    _postprocess_batch  detokenize; pick the best candidate
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer

from prompts_store import NotFound
from prompts_store.backbone import Backbone
from prompts_store.prompted import encode, greedy_decode, score_candidates

from .prompt_table import PromptTable
from .rows import Row, RowResult

log = logging.getLogger("mpt.service")


def unpadded(fast: Tokenizer | None) -> Tokenizer | None:
    """A private copy of a Rust tokenizer without the padding and truncation its tokenizer.json
    may carry: ``encode_batch`` would otherwise pad every text of a request to the longest (pads
    the attention mask then counts as input) and cut long inputs silently. The engine pads once
    per batch with a mask, and the caller enforces the length limit with a 413."""
    if fast is None:
        return None
    fast = Tokenizer.from_str(fast.to_str())
    fast.no_padding()
    fast.no_truncation()
    return fast


@dataclass
class Group:
    """Rows of one prompt length, ready for one forward pass."""

    index: list[int]  # the rows' positions in the batch
    rows: list[Row]
    prompts: torch.Tensor  # (B, l, d)
    ids: torch.Tensor | None = None  # (B, n) padded once
    mask: torch.Tensor | None = None  # (B, n)


class Engine:
    def __init__(self, backbone: Backbone, table: PromptTable):
        self.model, self.tokenizer, self.device = backbone.model, backbone.tokenizer, backbone.device
        self.dtype = self.model.get_input_embeddings().weight.dtype
        self.d_model = backbone.d_model
        self.pad_id = int(self.tokenizer.pad_token_id)
        self._fast = unpadded(getattr(self.tokenizer, "backend_tokenizer", None))
        self._table = table
        log.info("backbone %s on %s (%s), d_model=%d", backbone.model_id, self.device, self.dtype, self.d_model)

    # ---- tokenisation (event loop side; cheap) --------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids with EOS, untruncated (the caller enforces the length limit). Calls the Rust
        tokenizer directly when there is one: the same ids at half the cost of the HF wrapper."""
        if self._fast is not None:
            return [e.ids for e in self._fast.encode_batch(list(texts), add_special_tokens=True)]
        return self.tokenizer(list(texts), add_special_tokens=True).input_ids

    # ---- the batched forward (worker thread) --------------------------------------------------
    @torch.inference_mode()
    def run(self, rows: Sequence[Row]) -> list[RowResult]:
        """Final answers for ``rows``, in order. A row whose task is gone fails alone (NotFound)."""
        results = [RowResult() for _ in rows]
        for group in self._preprocess_batch(rows, results):
            generated, scores = self._core_batch(group)
            self._postprocess_batch(group, generated, scores, results)
        return results

    def _preprocess_batch(self, rows: Sequence[Row], results: list[RowResult]) -> list[Group]:
        by_length: dict[int, list[int]] = {}  # prompt length -> row positions
        with self._table.lock:  # grouping and composing see one state of the table
            for i, row in enumerate(rows):
                try:
                    by_length.setdefault(self._table.task_prompt_length(row.task), []).append(i)
                except NotFound as e:
                    results[i].error = e
            groups = [
                Group(idx, [rows[i] for i in idx], self._table.compose([rows[i].task for i in idx]))
                for idx in by_length.values()
            ]
        for g in groups:
            g.prompts = g.prompts.to(self.dtype)  # (B, l, d)
            g.ids, g.mask = self._pad([r.input_ids for r in g.rows])  # (B, n)
        return groups

    def _core_batch(self, g: Group) -> tuple[dict[int, list[int]], dict[int, list[float]]]:
        """Token ids generated per generating row, log-likelihoods per scoring row (by position in g)."""
        hidden, enc_mask = encode(self.model, g.prompts, g.ids, g.mask)  # (B, l + n, d), (B, l + n)
        generated: dict[int, list[int]] = {}
        gen = [i for i, r in enumerate(g.rows) if r.candidates is None]
        if gen:
            sel = torch.tensor(gen, device=self.device)
            steps = max(g.rows[i].max_new_tokens for i in gen)
            tokens = greedy_decode(self.model, hidden[sel], enc_mask[sel], steps).tolist()  # (G, <= steps)
            generated = dict(zip(gen, tokens))
        scores: dict[int, list[float]] = {}
        scored = [i for i, r in enumerate(g.rows) if r.candidates is not None]
        if scored:
            pairs = [(i, cand) for i in scored for cand in g.rows[i].candidates.ids]  # (row, candidate)
            cand_ids, cand_mask = self._pad([c for _, c in pairs])  # (P, m)
            row_index = torch.tensor([i for i, _ in pairs], device=self.device)  # (P,)
            flat = score_candidates(self.model, hidden, enc_mask, row_index, cand_ids, cand_mask).tolist()
            k = 0
            for i in scored:
                n = len(g.rows[i].candidates.ids)
                scores[i], k = flat[k : k + n], k + n
        return generated, scores

    def _postprocess_batch(
        self, g: Group, generated: dict[int, list[int]], scores: dict[int, list[float]], results: list[RowResult]
    ) -> None:
        for i, tokens in generated.items():
            # greedy is row-wise: a row's first k tokens do not depend on how long others decode
            out = tokens[: g.rows[i].max_new_tokens]
            results[g.index[i]].output = self.tokenizer.decode(out, skip_special_tokens=True).strip()
        for i, s in scores.items():
            best = max(range(len(s)), key=s.__getitem__)
            results[g.index[i]].output, results[g.index[i]].scores = g.rows[i].candidates.texts[best], s

    def _pad(self, seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        n = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), n), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = 1
        return ids.to(self.device), mask.to(self.device)

    def warm_up(self) -> float:
        """One generation and one scoring pass with a neutral prompt; returns seconds taken."""
        t0 = time.perf_counter()
        with torch.inference_mode():
            prompts = torch.ones(2, 1, self.d_model, dtype=self.dtype, device=self.device)
            ids, mask = self._pad(self.tokenize(["warm up", "a longer warm up input"]))
            hidden, enc_mask = encode(self.model, prompts, ids, mask)
            greedy_decode(self.model, hidden, enc_mask, 2)
            cand, cmask = self._pad(self.tokenize(["yes", "no"]))
            score_candidates(self.model, hidden, enc_mask, torch.tensor([0, 1], device=self.device), cand, cmask)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0
