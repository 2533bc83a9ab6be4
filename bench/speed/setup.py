"""What ``bench.speed`` measures on: a random-weights T5 of a named shape (built in-process, no
download), a family + task tables, the same prompts loaded into PEFT's ``MultitaskPromptTuning``
prompt encoder, and the workloads (inputs, candidates) both sides run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch

from mpt_core.compose import compose_rows


@dataclass(frozen=True)
class Shape:
    d_model: int
    layers: int
    heads: int
    d_ff: int
    vocab: int = 32128
    prompt_len: int = 100  # l
    input_len: int = 15  # mean tokens per input (EOS included)
    input_jitter: int = 3  # lengths drawn from input_len ± jitter (the batch is padded once)
    batch: int = 32
    tasks_in_batch: int = 8
    new_tokens: int = 4
    candidates: int = 2
    candidate_tokens: int = 2  # label tokens + EOS; 1 = one decoder step (label scoring by first token)

    def as_dict(self) -> dict:
        return asdict(self)


CPU_SHAPE = Shape(d_model=512, layers=6, heads=8, d_ff=2048, candidate_tokens=3)  # T5-small; labels of 1-2 tokens + EOS
GPU_SHAPE = Shape(
    d_model=768, layers=12, heads=12, d_ff=3072, input_len=128, input_jitter=0, batch=256, candidate_tokens=1
)  # T5-base, design §6
QUICK_SHAPE = Shape(
    d_model=64, layers=2, heads=4, d_ff=128, vocab=1000, prompt_len=10, batch=8, tasks_in_batch=4, candidate_tokens=3
)
QUICK_GPU_SHAPE = replace(QUICK_SHAPE, input_len=24, input_jitter=0, candidate_tokens=1)  # the GPU workload, tiny
SHAPES = {"cpu": CPU_SHAPE, "gpu": GPU_SHAPE, "quick": QUICK_SHAPE, "quick-gpu": QUICK_GPU_SHAPE}

PAD, EOS, START = 0, 1, 0


def build_model(shape: Shape, device: torch.device, dtype: torch.dtype, seed: int = 0) -> torch.nn.Module:
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(
        vocab_size=shape.vocab,
        d_model=shape.d_model,
        d_kv=shape.d_model // shape.heads,
        d_ff=shape.d_ff,
        num_layers=shape.layers,
        num_decoder_layers=shape.layers,
        num_heads=shape.heads,
        dropout_rate=0.0,
        pad_token_id=PAD,
        eos_token_id=EOS,
        decoder_start_token_id=START,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(cfg).eval().requires_grad_(False)
    return model.to(device=device, dtype=dtype)


@dataclass
class Tables:
    """One family (P*) and T tasks (u, v), as the engine's prompt table holds them (fp32)."""

    shared: torch.Tensor  # (1, l, d)
    u: torch.Tensor  # (T, l, r)
    v: torch.Tensor  # (T, d, r)

    def compose(self, task_index: torch.Tensor) -> torch.Tensor:
        """(B,) task slots -> (B, l, d), the one composition every path uses."""
        family = torch.zeros_like(task_index)
        return compose_rows(self.shared, self.u, self.v, family, task_index)


def build_tables(shape: Shape, tasks: int, device: torch.device, seed: int = 1) -> Tables:
    g = torch.Generator().manual_seed(seed)
    l, d = shape.prompt_len, shape.d_model
    shared = torch.randn(1, l, d, generator=g)
    u = 1 + 0.5 * torch.randn(tasks, l, 1, generator=g)
    v = 1 + 0.5 * torch.randn(tasks, d, 1, generator=g)
    return Tables(shared.to(device), u.to(device), v.to(device))


def build_peft(model: torch.nn.Module, tables: Tables):
    """PEFT's MULTITASK_PROMPT_TUNING around ``model`` (encoder-only prompts) holding the same
    P*, u, v: prompt_embeddings = P*, prefix_task_cols = u, prefix_task_rows = vᵀ
    (the mapping of training/peft_interop.py)."""
    from peft import MultitaskPromptTuningConfig, TaskType, get_peft_model

    T, l, r = tables.u.shape
    config = MultitaskPromptTuningConfig(
        task_type=TaskType.SEQ_2_SEQ_LM,
        num_virtual_tokens=l,
        token_dim=tables.shared.shape[-1],
        num_transformer_submodules=1,
        num_tasks=T,
        num_ranks=r,
        prompt_tuning_init="RANDOM",
    )
    peft_model = get_peft_model(model, config).eval()
    enc = peft_model.prompt_encoder["default"]
    with torch.no_grad():
        enc.embedding.weight.copy_(tables.shared[0])
        enc.prefix_task_cols.copy_(tables.u)
        enc.prefix_task_rows.copy_(tables.v.transpose(1, 2))
    return peft_model


@dataclass
class Workload:
    ids: torch.Tensor  # (B, n) right-padded once
    mask: torch.Tensor  # (B, n)
    task_ids: torch.Tensor  # (B,) task slot of each row
    pair_rows: torch.Tensor  # (P,) row of each (row, candidate) pair
    cand_ids: torch.Tensor  # (P, m) candidate ids (label tokens, then EOS when m > 1), right-padded
    cand_mask: torch.Tensor  # (P, m)

    def row(self, i: int) -> Workload:
        """Request i alone (batch of 1)."""
        keep = self.pair_rows == i
        n = int(self.mask[i].sum())
        return Workload(
            self.ids[i : i + 1, :n], self.mask[i : i + 1, :n], self.task_ids[i : i + 1],
            torch.zeros(int(keep.sum()), dtype=torch.long, device=self.ids.device),
            self.cand_ids[keep], self.cand_mask[keep],
        )  # fmt: skip


def build_workload(shape: Shape, tasks: int, batch: int, device: torch.device, seed: int = 2) -> Workload:
    """``batch`` inputs of random token ids (ids in [3, vocab)), spread over ``tasks`` task slots."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = shape.input_len - shape.input_jitter, shape.input_len + shape.input_jitter
    lengths = torch.randint(lo, hi + 1, (batch,), generator=g)
    n = int(lengths.max())
    ids = torch.randint(3, shape.vocab, (batch, n), generator=g)
    mask = (torch.arange(n)[None, :] < lengths[:, None]).long()
    ids = ids.masked_fill(mask == 0, PAD)
    ids[torch.arange(batch), lengths - 1] = EOS
    task_ids = torch.arange(batch) % tasks if tasks <= batch else torch.randperm(tasks, generator=g)[:batch]
    C, m = shape.candidates, shape.candidate_tokens
    pair_rows = torch.arange(batch).repeat_interleave(C)
    cand = torch.randint(3, shape.vocab, (batch * C, m), generator=g)
    cmask = torch.ones_like(cand)
    if m > 1:  # labels of 1..m-1 tokens, then EOS, then padding
        label_len = torch.randint(1, m, (batch * C,), generator=g)
        pos = torch.arange(m)[None, :]
        cand = torch.where(pos == label_len[:, None], EOS, cand)
        cmask = (pos <= label_len[:, None]).long()
        cand = cand.masked_fill(cmask == 0, PAD)
    to = lambda t: t.to(device)  # noqa: E731
    return Workload(to(ids), to(mask), to(task_ids), to(pair_rows), to(cand), to(cmask))
