"""The two sides ``bench.speed`` compares over one backbone, each producing final answers:

    engine  ``service.inference.engine.Engine.run`` on ``Row`` objects, exactly what the micro-batcher hands
            it in the server (compose under the table lock, pad once, encode, generate / score on
            the fast path, detokenize, pick the best candidate); tokenization is the request
            path's and is done beforehand, as there
    PEFT    ``MultitaskPromptTuning`` (``num_transformer_submodules=1``): ``generate`` + the
            tokenizer's ``batch_decode``; a forward with labels + log-softmax + the best candidate

Both read the same P*, u, v (the engine from its prompt table, PEFT from its prompt encoder) and the
same inputs (the engine's rows hold the workload's ids unpadded).
"""

from __future__ import annotations

import itertools

import torch

from mpt_core import Family, Task
from service.inference.rows import Candidates, Row
from service.table.prompt_table import PromptTable

from .model import text_of
from .setup import Tables, Workload


def build_table(backbone, families: dict[str, Tables]) -> PromptTable:
    """A prompt table holding each family (its P*) and its tasks ``<family>/<k>`` named ``<family>-<k>``."""
    table = PromptTable(backbone.d_model, backbone.device)
    seq = itertools.count(1)  # every version the table publishes carries a store sequence
    for name, t in families.items():
        table.put_family(Family(name, t.shared[0].cpu(), backbone.fingerprint), seq=next(seq))
        for k in range(t.u.shape[0]):
            table.put_task(Task(f"{name}-{k}", name, t.u[k].cpu(), t.v[k].cpu()), seq=next(seq))
    return table


def rows_of(wl: Workload, family: str, generate: int | None) -> list[Row]:
    """The workload as the engine's rows: generation of ``generate`` tokens, or scoring of each row's
    candidates (None)."""
    ids, lengths = wl.ids.cpu(), wl.mask.sum(1).tolist()
    tasks = wl.task_ids.tolist()
    if generate is not None:
        return [Row(f"{family}-{tasks[i]}", ids[i, :n].tolist(), generate) for i, n in enumerate(lengths)]
    pair_rows, cand, cmask = wl.pair_rows.tolist(), wl.cand_ids.cpu(), wl.cand_mask.sum(1).tolist()
    per_row: dict[int, list[list[int]]] = {}
    for p, r in enumerate(pair_rows):
        per_row.setdefault(r, []).append(cand[p, : cmask[p]].tolist())
    rows = []
    for i, n in enumerate(lengths):
        labels = per_row[i]
        texts = [text_of([t for t in c if t > 2]) for c in labels]  # the label words (EOS dropped)
        rows.append(Row(f"{family}-{tasks[i]}", ids[i, :n].tolist(), candidates=Candidates(texts, labels)))
    return rows


class Peft:
    """PEFT's side, from token ids to final answers."""

    def __init__(self, model, tokenizer, new_tokens: int):
        self.model, self.tokenizer, self.new_tokens = model, tokenizer, new_tokens

    @torch.inference_mode()
    def generate(self, wl: Workload) -> list[str]:
        out = self.model.generate(
            input_ids=wl.ids, attention_mask=wl.mask, task_ids=wl.task_ids,
            max_new_tokens=self.new_tokens, do_sample=False, num_beams=1,
        )  # fmt: skip
        return [t.strip() for t in self.tokenizer.batch_decode(out[:, 1:], skip_special_tokens=True)]

    @torch.inference_mode()
    def scores(self, wl: Workload) -> torch.Tensor:
        """(P,) log-likelihood of each (row, candidate) pair."""
        if wl.cand_ids.shape[1] == 1:  # label scoring: one forward per input, one decoder step
            labels = wl.cand_ids.new_full((wl.ids.shape[0], 1), 3)  # only the decoder input (start) matters
            out = self.model(input_ids=wl.ids, attention_mask=wl.mask, labels=labels, task_ids=wl.task_ids)
            logp = out.logits[:, 0].float().log_softmax(-1)  # (B, V)
            return logp[wl.pair_rows, wl.cand_ids[:, 0]]
        r = wl.pair_rows  # one forward per (input, candidate) pair
        labels = wl.cand_ids.masked_fill(wl.cand_mask == 0, -100)
        out = self.model(input_ids=wl.ids[r], attention_mask=wl.mask[r], labels=labels, task_ids=wl.task_ids[r])
        logp = out.logits.float().log_softmax(-1)
        tok = logp.gather(-1, wl.cand_ids.unsqueeze(-1)).squeeze(-1)
        return (tok * wl.cand_mask).sum(-1)

    def score(self, wl: Workload) -> tuple[torch.Tensor, list[int]]:
        """Pair scores and each row's best candidate (its index among the row's candidates)."""
        s = self.scores(wl)
        rows = int(wl.pair_rows.max()) + 1
        return s, s.view(rows, -1).argmax(1).tolist()


def compare_generate(engine_out: list, peft_out: list[str]) -> dict:
    equal = [r.output == p for r, p in zip(engine_out, peft_out)]
    return {"rows": len(equal), "rows_equal": sum(equal), "identical": all(equal)}


def compare_score(engine_out: list, peft_out: tuple[torch.Tensor, list[int]], rows: list[Row]) -> dict:
    scores, best = peft_out
    ours = torch.tensor([s for r in engine_out for s in r.scores])
    chosen = [r.output == row.candidates.texts[b] for r, row, b in zip(engine_out, rows, best)]
    return {
        "rows": len(chosen), "chosen_equal": sum(chosen), "identical_choices": all(chosen),
        "max_abs_diff": (ours - scores.float().cpu()).abs().max().item(),
    }  # fmt: skip


def engine_settings(shape, args, cuda: bool, extra_candidates: tuple[int, int] | None = None):
    """The server's settings for this run: the batch, the warm-up shapes the phases use (every batch
    bucket up to the batch, so the HTTP server's partial batches are prepared too), the fast options."""
    from service.settings import Settings

    batches = sorted({1 << k for k in range(shape.batch.bit_length()) if 1 << k <= shape.batch} | {shape.batch})
    candidates = {(shape.candidates, shape.candidate_tokens)} | ({extra_candidates} if extra_candidates else set())
    return Settings(
        max_batch=shape.batch, max_input_tokens=max(512, shape.input_len + shape.input_jitter),
        max_new_tokens=max(64, shape.new_tokens), default_new_tokens=shape.new_tokens,
        fast_attention=args.attention, fast_cross=args.cross, fast_compile=args.compile,
        fast_compile_min_batch=args.compile_min_batch, fast_cuda_graphs=cuda and args.cuda_graphs,
        fast_compile_budget_s=args.compile_budget,
        fast_warmup_batches=batches, fast_warmup_lengths=[shape.input_len + shape.input_jitter],
        fast_warmup_steps=[shape.new_tokens], fast_warmup_candidates=sorted(candidates),
    )  # fmt: skip


def settings_env(s) -> dict[str, str]:
    """The same settings as MPT_* environment variables (for the HTTP server)."""
    names = ["max_batch", "max_input_tokens", "max_new_tokens", "default_new_tokens"]
    names += [n for n in type(s).model_fields if n.startswith("fast_")]
    env = {}
    for n in names:
        v = getattr(s, n)
        if isinstance(v, list):
            v = ",".join(f"{x[0]}x{x[1]}" if isinstance(x, tuple) else str(x) for x in v)
        env[f"MPT_{n.upper()}"] = str(v).lower() if isinstance(v, bool) else str(v)
    return env
