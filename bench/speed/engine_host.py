"""The engine's host-side work per batch, the ways it was measured (not a unit test):

    pad          the batch's token ids into (B, n) tensors: a torch slice assignment per row (before)
                 vs rows written through a numpy view of one tensor (the engine's ``_pad``)
    detokenize   generated ids to strings: the HF tokenizer's ``decode`` per row (before) vs one Rust
                 ``decode_batch`` call (the engine's ``detokenize``); both give the same strings

    python -m bench.speed.engine_host [--batch 256 --tokens 128 --new-tokens 4]

Prints medians in ms per batch and writes nothing: the README quotes them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch


def _slice_pad(seqs, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The engine's padding before: one torch slice assignment per row."""
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=51)
    args = ap.parse_args(argv)

    from mpt_core.backbone import load_backbone
    from service.inference.engine import Engine
    from service.settings import Settings
    from service.table.prompt_table import PromptTable

    from .model import save_backbone
    from .setup import QUICK_SHAPE, build_model

    with tempfile.TemporaryDirectory() as tmp:
        shape = replace(QUICK_SHAPE, vocab=32128)  # a tiny model; the tokenizer has T5's 32,128 words
        save_backbone(build_model(shape, torch.device("cpu"), torch.float32), shape, Path(tmp))
        bb = load_backbone(tmp, device="cpu")
        engine = Engine(bb, PromptTable(bb.d_model, bb.device), Settings(fast_path=False))
        g = torch.Generator().manual_seed(0)
        lengths = torch.randint(args.tokens // 2, args.tokens + 1, (args.batch,), generator=g).tolist()
        seqs = [torch.randint(3, 32128, (n,), generator=g).tolist() for n in lengths]
        gen = [torch.randint(3, 32128, (args.new_tokens,), generator=g).tolist() for _ in range(args.batch)]
        assert all(torch.equal(a, b) for a, b in zip(engine._pad(seqs), _slice_pad(seqs, engine.pad_id)))
        hf = lambda: [bb.tokenizer.decode(s, skip_special_tokens=True).strip() for s in gen]  # noqa: E731
        assert engine.detokenize(gen) == hf()
        out = {
            "batch": args.batch, "tokens": args.tokens, "new_tokens": args.new_tokens,
            "pad_slice_ms": _median_ms(lambda: _slice_pad(seqs, engine.pad_id), args.repeats),
            "pad_numpy_ms": _median_ms(lambda: engine._pad(seqs), args.repeats),
            "decode_hf_per_row_ms": _median_ms(hf, args.repeats),
            "decode_rust_batch_ms": _median_ms(lambda: engine.detokenize(gen), args.repeats),
        }  # fmt: skip
    for k, v in out.items():
        print(f"{k:24s} {v:.3f}" if isinstance(v, float) else f"{k:24s} {v}")
    return out


if __name__ == "__main__":
    main()
