"""``mpt data toy``: small generated tasks (JSONL) for demos and tests."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    actions = sub.add_parser("data", help="example data").add_subparsers(dest="action", required=True)
    toy = actions.add_parser("toy", help="write small generated tasks (JSONL) for demos and tests")
    toy.add_argument("--out", required=True, help="directory to write <task>/{train,dev,test}.jsonl to")
    toy.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    toy.add_argument("--train", type=int, default=200, help="training examples per task (default: 200)")
    toy.set_defaults(func=run_toy)


def run_toy(args: argparse.Namespace) -> dict:
    from training.data.toy import write_toy_tasks

    return write_toy_tasks(args.out, args.seed, args.train)
