"""The ``mpt`` command line: build a tiny backbone, train (teachers, distill, adapt, spot),
evaluate, predict, move prompts to/from PEFT, and serve."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

# torch-importing modules load inside the functions: `mpt serve` must reach service.__main__
# before torch does (it sets OMP_WAIT_POLICY), and `mpt --help` stays quick.

# Flags shared by every training command, mapped onto TrainConfig fields.
TRAIN_FLAGS = {
    "steps": (int, "optimizer steps"),
    "batch_size": (int, "examples per step"),
    "lr": (float, "learning rate of the shared prompt P*"),
    "factor_lr": (float, "learning rate of the factors u, v (default: --lr)"),
    "warmup_steps": (int, "linear warmup steps (default: 5%% of --steps)"),
    "schedule": (str, "linear (decay to 0) or constant"),
    "weight_decay": (float, "AdamW weight decay"),
    "grad_clip": (float, "gradient norm clip (0 = off)"),
    "eval_every": (int, "evaluate on dev every N steps and keep the best (0 = never)"),
    "save_every": (int, "checkpoint every N steps (0 = only at the end)"),
    "seed": (int, "random seed; the same seed gives the same numbers on CPU"),
    "max_input_tokens": (int, "input truncation length"),
    "max_target_tokens": (int, "target truncation length"),
    "eval_batch_size": (int, "batch size of evaluation"),
    "eval_max_examples": (int, "dev examples per task used for checkpoint selection (0 = all)"),
}


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="backbone: hub id or local directory (see `mpt backbone tiny`)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])


def _add_train(p: argparse.ArgumentParser, out_required: bool = False, **defaults) -> None:
    from .loop import TrainConfig

    _add_model(p)
    p.add_argument("--task", action="append", required=True, metavar="NAME=DIR", help="a task directory (repeatable)")
    p.add_argument("--out", required=out_required, help="run directory: checkpoints and run.json")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    base = TrainConfig()
    for name, (typ, help_) in TRAIN_FLAGS.items():
        default = defaults.get(name, getattr(base, name))
        p.add_argument("--" + name.replace("_", "-"), type=typ, default=default, help=f"{help_} (default: {default})")


def _train_config(args: argparse.Namespace):
    from .loop import TrainConfig

    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)})


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mpt", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    bb = sub.add_parser("backbone", help="backbone utilities").add_subparsers(dest="action", required=True)
    tiny = bb.add_parser("tiny", help="build a small random T5 + tokenizer, saved with save_pretrained")
    tiny.add_argument("--out", required=True)
    tiny.add_argument("--d-model", type=int, default=64)
    tiny.add_argument("--layers", type=int, default=2)
    tiny.add_argument("--heads", type=int, default=4)
    tiny.add_argument("--d-ff", type=int, default=None)
    tiny.add_argument("--vocab-size", type=int, default=2000)
    tiny.add_argument("--extra-ids", type=int, default=100)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--corpus", action="append", help="text file(s) to train the tokenizer on (default: built-in)")

    data = sub.add_parser("data", help="example data").add_subparsers(dest="action", required=True)
    toy = data.add_parser("toy", help="write small generated tasks (JSONL) for demos and tests")
    toy.add_argument("--out", required=True)
    toy.add_argument("--seed", type=int, default=0)
    toy.add_argument("--train", type=int, default=200, help="training examples per task")

    train = sub.add_parser("train", help="train prompts").add_subparsers(dest="stage", required=True)
    t = train.add_parser("teachers", help="vanilla prompt tuning of one teacher per source task")
    _add_train(t, out_required=True)
    t.add_argument("--prompt-length", type=int, default=100)
    t.add_argument("--init", choices=["vocab", "random"], default="vocab")

    d = train.add_parser("distill", help="distil teachers into a shared prompt P* + per-task factors")
    _add_train(d)
    d.add_argument("--teachers", help="run directory of `train teachers`")
    d.add_argument("--store", required=True)
    d.add_argument("--family", required=True)
    d.add_argument("--lambda", dest="lam", type=float, default=1.0, help="weight λ of L_logits + L_hidden")
    d.add_argument("--temperature", type=float, default=2.0)
    d.add_argument("--kappa", type=int, default=None, help="most source tasks per batch (default: all)")
    d.add_argument("--rank", type=int, default=1)
    d.add_argument("--hidden", choices=["decoder", "encoder", "both"], default="decoder")
    d.add_argument("--shared-init", choices=["teachers-mean", "vocab", "random"], default="teachers-mean")
    d.add_argument("--prompt-length", type=int, default=100, help="l when there are no teachers")
    d.add_argument("--no-distill", action="store_true", help="ablation: decomposition + multitask, no teacher")
    d.add_argument("--no-decompose", action="store_true", help="ablation: one shared prompt for all tasks")
    d.add_argument("--overwrite", action="store_true")

    a = train.add_parser("adapt", help="adapt to target task(s) from P* ∘ (u vᵀ)")
    _add_train(a)
    a.add_argument("--store", required=True)
    a.add_argument("--family", required=True)
    a.add_argument("--mode", choices=["factors", "group", "full", "prompt"], default="factors")
    a.add_argument("--init", default="auto", help="factor init: auto, ones, mean, or a task of the family")
    a.add_argument("--shots", type=int, default=None, help="k-shot: train on k examples per task")
    a.add_argument("--new-family", default=None)
    a.add_argument("--overwrite", action="store_true")

    s = train.add_parser("spot", help="SPoT-style baseline: one prompt on the source mixture")
    _add_train(s)
    s.add_argument("--store", required=True)
    s.add_argument("--family", required=True)
    s.add_argument("--prompt-length", type=int, default=100)
    s.add_argument("--init", choices=["vocab", "random"], default="vocab")
    s.add_argument("--overwrite", action="store_true")

    e = sub.add_parser("eval", help="evaluate a stored task on a split")
    _add_model(e)
    e.add_argument("--store", required=True)
    e.add_argument("--task", action="append", required=True, metavar="NAME=DIR")
    e.add_argument("--split", choices=["dev", "test", "train"], default=None, help="default: test, else dev")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--max-input-tokens", type=int, default=256)

    pr = sub.add_parser("predict", help="greedy outputs of a stored task")
    _add_model(pr)
    pr.add_argument("--store", required=True)
    pr.add_argument("--task", required=True)
    pr.add_argument("--json", action="store_true", help='print {"task": ..., "outputs": [...]}')
    pr.add_argument("--max-new-tokens", type=int, default=32)
    pr.add_argument("--candidates", help="comma-separated answers to score; prints the best")
    pr.add_argument("inputs", nargs="+")

    peft = sub.add_parser("peft", help="PEFT MULTITASK_PROMPT_TUNING interop").add_subparsers(
        dest="action", required=True
    )
    ex = peft.add_parser("export", help="write a PEFT adapter from a family and its tasks")
    ex.add_argument("--store", required=True)
    ex.add_argument("--family", required=True)
    ex.add_argument("--task", action="append", help="tasks to export, in PEFT task_id order (default: all)")
    ex.add_argument("--out", required=True)
    ex.add_argument("--base-model", default=None, help="base_model_name_or_path (default: the family's model id)")
    im = peft.add_parser("import", help="read a PEFT adapter into the store")
    _add_model(im)
    im.add_argument("--adapter", required=True, help="directory with adapter_config.json + adapter_model.safetensors")
    im.add_argument("--store", required=True)
    im.add_argument("--family", required=True)
    im.add_argument("--task-names", help="comma-separated names for task_ids 0..T-1")
    im.add_argument("--overwrite", action="store_true")

    sv = sub.add_parser("serve", help="run the HTTP server (needs the [serve] extra)", add_help=False)
    sv.add_argument("rest", nargs=argparse.REMAINDER)
    return ap


def _backbone(args):
    from prompts_store.backbone import load_backbone

    return load_backbone(args.model, args.device, args.dtype)


def _default_out(args, stage: str, name: str) -> str:
    return args.out or os.path.join("runs", f"{stage}-{name}")


def run(args: argparse.Namespace) -> object:
    from prompts_store import DirectoryStore

    from .data import load_tasks

    if args.command == "backbone":
        from .tiny import TinyConfig, build_tiny_backbone

        cfg = TinyConfig(args.d_model, args.layers, args.heads, args.d_ff, args.vocab_size, args.extra_ids, args.seed)
        lines = [ln for f in args.corpus for ln in Path(f).read_text().splitlines()] if args.corpus else None
        return {"backbone": str(build_tiny_backbone(args.out, cfg, lines))}

    if args.command == "data":
        from .toy import write_toy_tasks

        return write_toy_tasks(args.out, args.seed, args.train)

    if args.command == "train":
        cfg = _train_config(args)
        tasks = load_tasks(args.task)
        backbone = _backbone(args)
        if args.stage == "teachers":
            from .teachers import train_teachers

            return train_teachers(backbone, tasks, args.out, args.prompt_length, args.init, cfg, args.resume)
        store = DirectoryStore(args.store)
        if args.stage == "distill":
            from .distill import DistillConfig, distill

            dcfg = DistillConfig(
                args.lam,
                args.temperature,
                args.kappa,
                args.rank,
                args.hidden,
                not args.no_distill,
                not args.no_decompose,
                args.shared_init,
                args.prompt_length,
            )
            out = _default_out(args, "distill", args.family)
            return distill(
                backbone, tasks, store, args.family, cfg, dcfg, out, args.teachers, args.resume, args.overwrite
            )
        if args.stage == "adapt":
            from .adapt import AdaptConfig, adapt

            acfg = AdaptConfig(args.mode, args.init, args.new_family, args.shots)
            out = _default_out(args, f"adapt-{args.mode}", args.new_family or tasks[0].name)
            return adapt(backbone, tasks, store, args.family, cfg, acfg, out, args.resume, args.overwrite)
        if args.stage == "spot":
            from .spot import train_spot

            out = _default_out(args, "spot", args.family)
            return train_spot(
                backbone,
                tasks,
                store,
                args.family,
                args.prompt_length,
                args.init,
                cfg,
                out,
                args.resume,
                args.overwrite,
            )

    if args.command == "eval":
        from .batching import Collator
        from .evaluate import evaluate_prompt, stored_prompt

        tasks = load_tasks(args.task)
        store = DirectoryStore(args.store, create=False)
        backbone = _backbone(args)
        collator = Collator(backbone.tokenizer, backbone.device, args.max_input_tokens)
        results = {}
        for task in tasks:
            split = args.split or ("test" if task.splits.get("test") else "dev")
            prompt = stored_prompt(store, task.name)
            metrics = evaluate_prompt(backbone, prompt, task, task.split(split), collator, args.batch_size)
            results[task.name] = {"split": split, **metrics}
        return results

    if args.command == "predict":
        return _predict(args)

    if args.command == "peft":
        from .peft_interop import export_peft, import_peft

        if args.action == "export":
            return export_peft(
                DirectoryStore(args.store, create=False), args.family, args.task, args.out, args.base_model
            )
        names = args.task_names.split(",") if args.task_names else None
        backbone = _backbone(args)
        return import_peft(
            DirectoryStore(args.store), args.adapter, args.family, backbone.fingerprint, names, args.overwrite
        )
    raise AssertionError(f"unhandled command {args.command}")


def _predict(args: argparse.Namespace) -> None:
    from prompts_store import DirectoryStore

    from .batching import Collator
    from .evaluate import generate, rank_scores, stored_prompt

    store = DirectoryStore(args.store, create=False)
    prompt = stored_prompt(store, args.task)
    backbone = _backbone(args)
    collator = Collator(backbone.tokenizer, backbone.device)
    result: dict = {"task": args.task}
    if args.candidates:
        labels = [c.strip() for c in args.candidates.split(",") if c.strip()]
        scores = rank_scores(backbone, prompt, args.inputs, labels, collator, 32)
        result["outputs"] = [labels[max(range(len(labels)), key=row.__getitem__)] for row in scores]
        result["scores"] = [dict(zip(labels, row)) for row in scores]
    else:
        result["outputs"] = generate(backbone, prompt, args.inputs, collator, 32, args.max_new_tokens)
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(result["outputs"]))
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        try:
            from service.__main__ import main as serve_main
        except ImportError as e:
            print(
                f"mpt serve: the server needs the [serve] extra ({e}); "
                "run `make serve` or pip install 'mpt-serve[serve]'",
                file=sys.stderr,
            )
            return 2
        return serve_main(argv[1:])
    args = build_parser().parse_args(argv)
    from prompts_store import StoreError

    try:
        result = run(args)
    except (StoreError, ValueError, FileNotFoundError, RuntimeError) as e:
        if os.environ.get("MPT_DEBUG"):
            raise
        print(f"mpt: error: {e}", file=sys.stderr)
        return 2
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
