"""``mpt eval`` (metrics of stored tasks on a split) and ``mpt predict`` (greedy outputs, or the
best of given candidates)."""

from __future__ import annotations

import argparse
import json

from .common import add_model_args, add_store_arg, load_backbone, open_store


def register(sub) -> None:
    e = sub.add_parser("eval", help="evaluate a stored task on a split")
    add_model_args(e)
    add_store_arg(e)
    e.add_argument("--task", action="append", required=True, metavar="NAME=DIR", help="a task directory (repeatable)")
    e.add_argument("--split", choices=["dev", "test", "train"], default=None, help="default: test, else dev")
    e.add_argument("--batch-size", type=int, default=32, help="evaluation batch size (default: 32)")
    e.add_argument("--max-input-tokens", type=int, default=256, help="input truncation length (default: 256)")
    e.set_defaults(func=run_eval)

    p = sub.add_parser("predict", help="greedy outputs of a stored task")
    add_model_args(p)
    add_store_arg(p)
    p.add_argument("--task", required=True, help="a task of the store")
    p.add_argument("--json", action="store_true", help='print {"task": ..., "outputs": [...]}')
    p.add_argument("--max-new-tokens", type=int, default=32, help="most tokens generated per input (default: 32)")
    p.add_argument("--candidates", help="comma-separated answers to score; prints the best")
    p.add_argument("inputs", nargs="+")
    p.set_defaults(func=run_predict)


def run_eval(args: argparse.Namespace) -> dict:
    from training.data.batching import Collator
    from training.data.examples import load_tasks
    from training.evaluate import evaluate_prompt, stored_prompt

    tasks = load_tasks(args.task)
    store = open_store(args.store, create=False)
    backbone = load_backbone(args)
    collator = Collator(backbone.tokenizer, backbone.device, args.max_input_tokens)
    results = {}
    for task in tasks:
        split = args.split or ("test" if task.splits.get("test") else "dev")
        prompt = stored_prompt(store, task.name)
        metrics = evaluate_prompt(backbone, prompt, task, task.split(split), collator, args.batch_size)
        results[task.name] = {"split": split, **metrics}
    return results


def run_predict(args: argparse.Namespace) -> int:
    from training.data.batching import Collator
    from training.evaluate import generate, rank_scores, stored_prompt

    store = open_store(args.store, create=False)
    prompt = stored_prompt(store, args.task)
    backbone = load_backbone(args)
    collator = Collator(backbone.tokenizer, backbone.device)
    result: dict = {"task": args.task}
    if args.candidates:
        labels = [c.strip() for c in args.candidates.split(",") if c.strip()]
        scores = rank_scores(backbone, prompt, args.inputs, labels, collator, 32)
        result["outputs"] = [labels[max(range(len(labels)), key=row.__getitem__)] for row in scores]
        result["scores"] = [dict(zip(labels, row)) for row in scores]
    else:
        result["outputs"] = generate(backbone, prompt, args.inputs, collator, 32, args.max_new_tokens)
    print(json.dumps(result) if args.json else "\n".join(result["outputs"]))
    return 0
