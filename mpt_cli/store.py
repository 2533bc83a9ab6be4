"""``mpt store init|stats|copy``: whole-store operations on any backend (a store URL or a directory)."""

from __future__ import annotations

import argparse
import sys

from .common import STORE_HELP


def register(sub) -> None:
    actions = sub.add_parser("store", help="create, inspect and copy prompt stores").add_subparsers(
        dest="action", required=True
    )
    init = actions.add_parser("init", help="create the store if needed and run its schema migrations")
    init.add_argument("store", help=STORE_HELP)
    init.set_defaults(func=run_init)

    stats = actions.add_parser("stats", help="counts and sizes of a store")
    stats.add_argument("store", help=STORE_HELP)
    stats.set_defaults(func=run_stats)

    copy = actions.add_parser("copy", help="copy every family and task to another store (any two backends)")
    copy.add_argument("src", help="the store to read")
    copy.add_argument("dst", help="the store to write (created when missing)")
    copy.add_argument("--overwrite", action="store_true", help="replace families and tasks already in DST")
    copy.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    copy.set_defaults(func=run_copy)


def run_init(args: argparse.Namespace) -> dict:
    from prompts_store import init_store

    return init_store(args.store)


def run_stats(args: argparse.Namespace) -> dict:
    from prompts_store import store_stats

    return store_stats(args.store)


def run_copy(args: argparse.Namespace) -> dict | int:
    import json

    from prompts_store import copy_store

    summary = copy_store(args.src, args.dst, overwrite=args.overwrite, progress=not args.no_progress)
    if summary["skipped"]:  # records that failed the load checks were not copied: say so, and fail
        print(json.dumps(summary, indent=2), file=sys.stderr)
        print(f"mpt: error: {len(summary['skipped'])} record(s) of {args.src} failed the load checks", file=sys.stderr)
        return 1
    return summary
