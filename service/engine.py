"""The inference engine: ONE frozen backbone, the resident prompt table, and the batched
forward — pad once, compose every row's prompt with one gather, encode once, then greedy
decoding and/or candidate scoring. Runs on the batcher's worker thread, never on the event loop."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from tokenizers import Tokenizer

from prompts_store import NotFound
from prompts_store.backbone import load_backbone
from prompts_store.prompted import encode, greedy_decode, score_candidates

from .prompt_table import PromptTable
from .settings import Settings

log = logging.getLogger("mpt.service")


@dataclass
class Row:
    """One input of one request, as queued for a batch."""

    task: str
    input_ids: list[int]
    max_new_tokens: int = 0  # generation when candidates is None
    candidates: list[list[int]] | None = None  # token ids of each candidate (scoring mode)
    enqueued_at: float = field(default_factory=time.perf_counter)


@dataclass
class RowResult:
    output: str | None = None
    scores: list[float] | None = None
    error: Exception | None = None


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


class Engine:
    def __init__(self, settings: Settings):
        bb = load_backbone(settings.model, settings.device, settings.dtype, settings.attn_implementation)
        self.model, self.tokenizer, self.device = bb.model, bb.tokenizer, bb.device
        self.dtype = self.model.get_input_embeddings().weight.dtype
        self._fast = unpadded(getattr(self.tokenizer, "backend_tokenizer", None))
        self.fingerprint = bb.fingerprint
        self.d_model = bb.d_model
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.table = PromptTable(self.d_model, self.device)
        log.info("backbone %s loaded on %s (%s), d_model=%d", settings.model, self.device, self.dtype, self.d_model)

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
        """Results for ``rows``, in order. Rows whose task vanished get a NotFound error."""
        results = [RowResult() for _ in rows]
        groups: dict[int, list[int]] = {}  # prompt length -> row indices
        for i, row in enumerate(rows):
            try:
                groups.setdefault(self.table.task_prompt_length(row.task), []).append(i)
            except (NotFound, KeyError):
                results[i].error = NotFound(f"task {row.task!r} does not exist")
        for idx in groups.values():
            self._run_group([rows[i] for i in idx], [results[i] for i in idx])
        return results

    def _run_group(self, rows: list[Row], results: list[RowResult]) -> None:
        try:
            prompts = self.table.compose([r.task for r in rows]).to(self.dtype)  # (B, l, d)
        except NotFound:  # a task was deleted between grouping and composing: serve the others
            alive = [i for i, r in enumerate(rows) if r.task in self.table.tasks]
            for i in set(range(len(rows))) - set(alive):
                results[i].error = NotFound(f"task {rows[i].task!r} does not exist")
            if alive:
                self._run_group([rows[i] for i in alive], [results[i] for i in alive])
            return
        ids, mask = self._pad([r.input_ids for r in rows])  # (B, n), padded once
        hidden, enc_mask = encode(self.model, prompts, ids, mask)  # (B, l + n, d)
        gen = [i for i, r in enumerate(rows) if r.candidates is None]
        if gen:
            self._generate(rows, results, gen, hidden, enc_mask)
        scored = [i for i, r in enumerate(rows) if r.candidates is not None]
        if scored:
            self._score(rows, results, scored, hidden, enc_mask)

    def _generate(self, rows, results, gen, hidden, enc_mask) -> None:
        sel = torch.tensor(gen, device=self.device)
        steps = max(rows[i].max_new_tokens for i in gen)
        tokens = greedy_decode(self.model, hidden[sel], enc_mask[sel], steps).tolist()  # (G, <= steps)
        for j, i in enumerate(gen):
            # greedy is row-wise: a row's first k tokens do not depend on how long others decode
            out = tokens[j][: rows[i].max_new_tokens]
            results[i].output = self.tokenizer.decode(out, skip_special_tokens=True).strip()

    def _score(self, rows, results, scored, hidden, enc_mask) -> None:
        pair_rows, pair_ids = [], []
        for i in scored:
            for cand in rows[i].candidates:
                pair_rows.append(i)
                pair_ids.append(cand)
        cand_ids, cand_mask = self._pad(pair_ids)
        row_index = torch.tensor(pair_rows, device=self.device)
        scores = score_candidates(self.model, hidden, enc_mask, row_index, cand_ids, cand_mask).tolist()
        k = 0
        for i in scored:
            n = len(rows[i].candidates)
            results[i].scores = scores[k : k + n]
            k += n

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
