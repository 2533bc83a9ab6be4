"""``mpt backbone tiny``: a small random T5 + tokenizer, saved with ``save_pretrained``."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.config import TinyConfig

from .flags import add_config_flags, config_from_args


def register(sub) -> None:
    actions = sub.add_parser("backbone", help="backbone utilities").add_subparsers(dest="action", required=True)
    tiny = actions.add_parser("tiny", help="build a small random T5 + tokenizer, saved with save_pretrained")
    tiny.add_argument("--out", required=True, help="directory to write the model and tokenizer to")
    tiny.add_argument("--corpus", action="append", help="text file(s) to train the tokenizer on (default: built-in)")
    add_config_flags(tiny, TinyConfig, "model shape")
    tiny.set_defaults(func=run_tiny)


def run_tiny(args: argparse.Namespace) -> dict:
    cfg = config_from_args(TinyConfig, args)
    from training.tiny import build_tiny_backbone

    lines = [ln for f in args.corpus for ln in Path(f).read_text().splitlines()] if args.corpus else None
    return {"backbone": str(build_tiny_backbone(args.out, cfg, lines))}
