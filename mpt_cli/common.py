"""Arguments several commands share, and the one place the CLI opens a store and loads a backbone."""

from __future__ import annotations

import argparse
import os

DTYPES = ("float32", "bfloat16", "float16")
STORE_HELP = "the prompt store: sqlite:///PATH, a directory, or postgresql://..."


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="backbone: hub id or local directory (see `mpt backbone tiny`)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="backbone dtype (default: float32)")


def add_store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, help=STORE_HELP)


def open_store(location: str, create: bool = True):
    """The store at ``location`` (a URL or a directory); ``create=False`` refuses one that does not exist."""
    from prompts_store import open_store as open_url

    return open_url(location, create=create)


def load_backbone(args: argparse.Namespace):
    from mpt_core.backbone import load_backbone

    return load_backbone(args.model, args.device, args.dtype)


def default_out(args: argparse.Namespace, stage: str, name: str) -> str:
    """``--out``, else ``runs/<stage>-<name>``."""
    return args.out or os.path.join("runs", f"{stage}-{name}")
