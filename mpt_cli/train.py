"""``mpt train teachers|distill|adapt|spot``: the training stages. Each stage's settings are a
config dataclass of ``training.config`` whose fields generate its flags."""

from __future__ import annotations

import argparse

from training.config import AdaptConfig, DistillConfig, PromptConfig, TrainConfig

from .common import add_model_args, add_store_arg, default_out, load_backbone, open_store
from .flags import add_config_flags, config_from_args


def register(sub) -> None:
    stages = sub.add_parser("train", help="train prompts").add_subparsers(dest="stage", required=True)

    t = _stage(stages, "teachers", "vanilla prompt tuning of one teacher per source task", run_teachers, True)
    add_config_flags(t, PromptConfig, "teacher prompts")

    d = _stage(stages, "distill", "distil teachers into a shared prompt P* + per-task factors", run_distill)
    d.add_argument("--teachers", help="run directory of `train teachers`")
    _add_store_args(d)
    add_config_flags(d, DistillConfig, "distillation")

    a = _stage(stages, "adapt", "adapt to target task(s) from P* ∘ (u vᵀ)", run_adapt)
    _add_store_args(a, "the family to adapt from")
    add_config_flags(a, AdaptConfig, "adaptation")

    s = _stage(stages, "spot", "SPoT-style baseline: one prompt on the source mixture", run_spot)
    _add_store_args(s, "the family to write the prompt to")
    add_config_flags(s, PromptConfig, "the mixture prompt")


def _stage(stages, name: str, help: str, func, out_required: bool = False) -> argparse.ArgumentParser:
    """A ``train`` subcommand with the arguments every stage shares."""
    p = stages.add_parser(name, help=help, description=help)
    add_model_args(p)
    p.add_argument("--task", action="append", required=True, metavar="NAME=DIR", help="a task directory (repeatable)")
    out_help = "run directory: checkpoints and run.json" + ("" if out_required else " (default: runs/STAGE-NAME)")
    p.add_argument("--out", required=out_required, help=out_help)
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    add_config_flags(p, TrainConfig, "training loop")
    p.set_defaults(func=func)
    return p


def _add_store_args(p: argparse.ArgumentParser, family_help: str = "the family to write") -> None:
    add_store_arg(p)
    p.add_argument("--family", required=True, help=family_help)
    p.add_argument("--overwrite", action="store_true", help="replace families and tasks already in the store")


def _inputs(args: argparse.Namespace):
    """The tasks and the backbone a stage trains on."""
    from training.data.examples import load_tasks

    return load_tasks(args.task), load_backbone(args)


def run_teachers(args: argparse.Namespace) -> dict:
    cfg, prompt = config_from_args(TrainConfig, args), config_from_args(PromptConfig, args)
    tasks, backbone = _inputs(args)
    from training.stages.teachers import train_teachers

    return train_teachers(backbone, tasks, args.out, prompt.prompt_length, prompt.init, cfg, args.resume)


def run_distill(args: argparse.Namespace) -> dict:
    cfg, dcfg = config_from_args(TrainConfig, args), config_from_args(DistillConfig, args)
    tasks, backbone = _inputs(args)
    from training.stages.distill import distill

    store, out = open_store(args.store), default_out(args, "distill", args.family)
    return distill(backbone, tasks, store, args.family, cfg, dcfg, out, args.teachers, args.resume, args.overwrite)


def run_adapt(args: argparse.Namespace) -> dict:
    cfg, acfg = config_from_args(TrainConfig, args), config_from_args(AdaptConfig, args)
    tasks, backbone = _inputs(args)
    from training.stages.adapt import adapt

    store, out = open_store(args.store), default_out(args, f"adapt-{acfg.mode}", acfg.new_family or tasks[0].name)
    return adapt(backbone, tasks, store, args.family, cfg, acfg, out, args.resume, args.overwrite)


def run_spot(args: argparse.Namespace) -> dict:
    cfg, prompt = config_from_args(TrainConfig, args), config_from_args(PromptConfig, args)
    tasks, backbone = _inputs(args)
    from training.stages.spot import train_spot

    store, out = open_store(args.store), default_out(args, "spot", args.family)
    length, init = prompt.prompt_length, prompt.init
    return train_spot(backbone, tasks, store, args.family, length, init, cfg, out, args.resume, args.overwrite)
