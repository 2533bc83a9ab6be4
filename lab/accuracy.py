"""``make bench-accuracy``: the paper's comparison on the offline lab.

    python -m lab.accuracy            # quick grid: 6 methods x 6 targets x shots {4, full} x 3 seeds
                                        # (~30 min on 2 CPU cores)
    python -m lab.accuracy --full     # shots {4, 16, 32, full} x 5 seeds, longer source/target training
    python -m lab.accuracy --smoke    # CI: 2 methods, 1 target, 1 seed, a few steps (mechanics only)
    python -m lab.accuracy --shots 4 16 32 full   # the quick grid at more shots (cached cells are reused)

Writes bench/results/accuracy.json (rows: method, target, seen, shots, seed, metric, value,
trainable_params), accuracy.md (mean ± std tables) and accuracy.png (accuracy vs shots).
The backbone must have passed the gate (``python -m lab.gate``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench.tables import write_beside
from lab.grid import FULL, GridConfig, run_grid
from lab.report import plot

PRESETS = {
    "quick": GridConfig(),
    "full": GridConfig(
        shots=(4, 16, 32, FULL),
        seeds=(0, 1, 2, 3, 4),
        teacher_steps=600,
        source_steps=1200,
        target_steps=300,
        eval_every=50,
    ),
    "smoke": GridConfig(
        targets=("is_bigger",),
        methods=("pt", "mpt-factors"),
        shots=(4,),
        seeds=(0,),
        teacher_steps=4,
        source_steps=4,
        target_steps=4,
        eval_every=2,
        train_examples=40,
        dev_examples=8,
        test_examples=16,
        prompt_length=4,
        batch_size=6,
    ),
}


def parse_shots(text: str) -> int:
    if text == "full":
        return FULL
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"shots {text!r} must be a positive integer or 'full'")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.accuracy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--full", action="store_true", help="the whole grid (hours on 2 CPU cores)")
    group.add_argument("--smoke", action="store_true", help="a tiny grid that checks the mechanics (CI)")
    ap.add_argument("--backbone", default=None, help="backbone directory (default demo/backbone)")
    ap.add_argument("--out", default="bench/results", help="directory for accuracy.json/.md/.png")
    ap.add_argument("--run-dir", default="build/accuracy", help="scratch: source stage, target runs, cached cells")
    ap.add_argument(
        "--shots",
        nargs="+",
        type=parse_shots,
        default=None,
        metavar="K",
        help="override the preset's shots (k >= 1, or 'full'); finished cells are reused",
    )
    args = ap.parse_args(argv)
    preset = "full" if args.full else "smoke" if args.smoke else "quick"
    cfg = PRESETS[preset]
    if args.backbone:
        cfg = replace(cfg, backbone=args.backbone)
    if args.shots:
        cfg = replace(cfg, shots=tuple(args.shots))
    t0 = time.perf_counter()
    result = run_grid(cfg, Path(args.run_dir) / preset)
    backbone_report = Path(cfg.backbone) / "lab_backbone.json"
    result = {
        "preset": preset,
        "command": "python -m lab.accuracy"
        + "".join(" " + shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "backbone": json.loads(backbone_report.read_text()) if backbone_report.exists() else {"path": cfg.backbone},
        **{k: v for k, v in result.items() if k != "wall_seconds"},
    }
    result["backbone"].pop("history", None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "accuracy" if preset != "smoke" else "accuracy-smoke"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    md = write_beside(out / f"{stem}.json")  # the tables: bench.tables.accuracy
    plot(result, out / f"{stem}.png")
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
