"""Helpers for the store tests: small artefacts, comparisons, a child-process runner."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from mpt_core import Family, Task

ROOT = Path(__file__).resolve().parents[2]

FP = {"model_id": "x", "d_model": 6, "vocab_size": 10, "num_layers": 1, "num_decoder_layers": 1}


def make_family(name: str = "fam", l: int = 4, d: int = 6, seed: int = 0) -> Family:
    g = torch.Generator().manual_seed(seed)
    return Family(name, torch.randn(l, d, generator=g), dict(FP, d_model=d), _stamp(seed), f"test:{seed}")


def make_task(name: str = "t", fam: str = "fam", l: int = 4, d: int = 6, r: int = 1, seed: int = 1) -> Task:
    g = torch.Generator().manual_seed(seed)
    return Task(name, fam, torch.randn(l, r, generator=g), torch.randn(d, r, generator=g), _stamp(seed), f"test:{seed}")


def _stamp(seed: int) -> str:
    """A created_at that depends on the seed only, so a task made in another process compares equal."""
    return f"2026-01-01T{seed // 3600 % 24:02d}:{seed // 60 % 60:02d}:{seed % 60:02d}+00:00"


def same_task(a: Task, b: Task) -> bool:
    return (
        (a.name, a.family, a.created_at, a.source) == (b.name, b.family, b.created_at, b.source)
        and torch.equal(a.u, b.u)
        and torch.equal(a.v, b.v)
    )


def run_child(code: str, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python process (the worktree's packages importable); ``sys.argv[1:]`` = args."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, env=env, cwd=ROOT, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
