"""The pretraining data, tokenised once into tensors: the prefixed supervised mixture (train
splits of every family in pretraining) and span-corrupted world text. The hot loop only indexes
these tensors; batches are drawn in length-sorted groups to waste little compute on padding."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from .world.corpus import as_tensor, pack_lines, salient_facts, sentinel_ids, span_corrupt, world_lines
from .world.registry import MIX_WEIGHTS, PRETRAINING, family
from .world.tasks import samples
from .world.world import World, stable_seed

SPAN_SENTINELS = 20  # <extra_id_0..19> mark dropped spans
DENOISE_MODE_SENTINEL = 31  # <extra_id_31> opens a denoising input (needs >= 32 sentinels)


@dataclass
class Bank:
    """Right-padded token tensors; rows ``[:n_supervised]`` are the prefixed mixture, the rest span corruption."""

    inputs: torch.Tensor  # (N, n_max) long, pad 0
    input_len: torch.Tensor  # (N,)
    labels: torch.Tensor  # (N, m_max) long, -100 on padding
    label_len: torch.Tensor  # (N,)
    n_supervised: int
    source: list[str]  # (N,) family name or "span"

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask, labels) of rows ``idx``, trimmed to the longest row."""
        n, m = int(self.input_len[idx].max()), int(self.label_len[idx].max())
        ids = self.inputs[idx, :n]
        return ids, (ids != 0).long(), self.labels[idx, :m]

    def to(self, device: torch.device) -> Bank:
        move = lambda t: t.to(device)  # noqa: E731
        return Bank(
            move(self.inputs),
            move(self.input_len),
            move(self.labels),
            move(self.label_len),
            self.n_supervised,
            self.source,
        )


def tokenizer_lines(world: World, per_family: int = 200, corpus_lines: int = 20000) -> list[str]:
    """Text the lab's tokenizer is trained on: world text, and prefixed and bare inputs and targets
    of every family (all splits, so that held-out words are whole tokens, as in a real vocabulary)."""
    from .world.registry import FAMILIES

    lines = world_lines(world, corpus_lines, seed=1)
    for fam in FAMILIES.values():
        for split in ("train", "dev", "test"):
            for s in samples(fam, world, split, per_family, seed=99):
                lines += [fam.prefixed(s.body), s.body, s.target]
    return lines


def _encode(tokenizer, texts: list[str], max_len: int) -> list[list[int]]:
    return tokenizer(texts, truncation=True, max_length=max_len).input_ids  # each ends in EOS


def world_text_rows(
    tokenizer,
    world: World,
    n: int,
    chunk_tokens: int,
    max_target: int,
    seed: int,
    denoise_share: float,
    salient_share: float = 0.0,
) -> tuple[list[list[int]], list[list[int]]]:
    """``n`` unsupervised rows of world text: T5 span corruption (target = the dropped spans) and,
    for ``denoise_share`` of them, BART-style denoising (short chunk, target = the whole chunk):
    the only objective that makes the backbone reproduce every word of its vocabulary, which
    copying answers out of the input (QA, cloze, "which is bigger") needs for held-out words.
    Denoising inputs start with a mode token (the last sentinel, as UL2's paradigm tokens):
    without it both objectives share one input format and the model cannot tell which to do.
    ``salient_share`` of the rows are span corruption of a knowledge sentence whose dropped span
    is always its salient attribute (see ``corpus.salient_facts``)."""
    if n == 0:
        return [], []
    rng = random.Random(stable_seed(world.cfg.seed, seed, "span"))
    eos, sentinels = tokenizer.eos_token_id, sentinel_ids(tokenizer, SPAN_SENTINELS)
    mode = sentinel_ids(tokenizer, DENOISE_MODE_SENTINEL + 1)[-1]
    token_lines = tokenizer(world_lines(world, n * 2, seed=seed), add_special_tokens=False).input_ids
    n_denoise = round(n * denoise_share)
    long_chunks = pack_lines(token_lines, chunk_tokens, rng)[: n - n_denoise]
    short_chunks = pack_lines(token_lines, max_target - 1, rng)[:n_denoise]
    inputs, targets = [], []
    n_salient = round(n * salient_share)
    facts = salient_facts(n_salient, seed)
    fact_in = (
        tokenizer(
            [t.format(tokenizer.convert_ids_to_tokens(sentinels[0])) for t, _ in facts], add_special_tokens=False
        ).input_ids
        if facts
        else []
    )
    fact_out = tokenizer([a for _, a in facts], add_special_tokens=False).input_ids if facts else []
    for i, a in zip(fact_in, fact_out):
        inputs.append(i + [eos])
        targets.append([sentinels[0], *a, sentinels[1], eos])
    long_chunks = long_chunks[: max(0, len(long_chunks) - n_salient)]
    for chunk, denoise in [(c, False) for c in long_chunks] + [(c, True) for c in short_chunks]:
        if len(chunk) < 4:
            continue
        i, t = span_corrupt(chunk, rng, sentinels)
        inputs.append(([mode] if denoise else []) + i + [eos])
        targets.append((chunk if denoise else t)[: max_target - 1] + [eos])
    return inputs, targets


def build_bank(
    tokenizer,
    world: World,
    per_family: int,
    span_rows: int,
    max_input: int,
    max_target: int,
    seed: int,
    denoise_share: float = 0.0,
    chunk_tokens: int = 40,
    salient_share: float = 0.0,
) -> Bank:
    names = list(PRETRAINING)
    sup_in, sup_out, source = [], [], []
    for name in names:
        fam = family(name)
        rows = samples(fam, world, "train", round(per_family * MIX_WEIGHTS.get(name, 1.0)), seed)
        sup_in += _encode(tokenizer, [fam.prefixed(s.body) for s in rows], max_input)
        sup_out += _encode(tokenizer, [s.target for s in rows], max_target)
        source += [name] * len(rows)
    span_in, span_out = world_text_rows(
        tokenizer, world, span_rows, min(chunk_tokens, max_input - 1), max_target, seed, denoise_share, salient_share
    )
    all_in, all_out = sup_in + span_in, sup_out + span_out
    labels = as_tensor(all_out, -100)
    return Bank(
        inputs=as_tensor(all_in, 0),
        input_len=torch.tensor([len(r) for r in all_in]),
        labels=labels,
        label_len=torch.tensor([len(r) for r in all_out]),
        n_supervised=len(sup_in),
        source=source + ["span"] * len(span_in),
    )


class BankSampler:
    """Each batch: ``span_fraction`` span-corruption rows, the rest uniform over the mixture's rows
    (every family has the same number of rows). Rows are drawn ``group`` batches at a time,
    sorted by length and cut into batches, which are then shuffled."""

    def __init__(self, bank: Bank, batch_size: int, span_fraction: float, seed: int, group: int = 16):
        if not 0 <= span_fraction < 1:
            raise ValueError(f"span_fraction={span_fraction} must be in [0, 1)")
        self.bank, self.batch_size, self.group = bank, batch_size, group
        self.n_span = round(batch_size * span_fraction)
        self.gen = torch.Generator().manual_seed(seed)
        self.queue: list[torch.Tensor] = []

    def _refill(self) -> None:
        b, g, bank = self.batch_size, self.group, self.bank
        n_sup, n_span_rows = bank.n_supervised, len(bank) - bank.n_supervised
        k_span = self.n_span if n_span_rows else 0
        sup = torch.randint(0, n_sup, (g * (b - k_span),), generator=self.gen)
        span = n_sup + torch.randint(0, max(1, n_span_rows), (g * k_span,), generator=self.gen)
        rows = torch.cat([sup, span])
        rows = rows[torch.argsort(bank.input_len[rows].cpu(), stable=True)]
        batches = list(rows.view(g, -1))
        order = torch.randperm(g, generator=self.gen).tolist()
        self.queue = [batches[i] for i in order]

    def next(self) -> torch.Tensor:
        if not self.queue:
            self._refill()
        return self.queue.pop()
