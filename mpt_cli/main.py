"""The mpt command line: build a tiny backbone, make example data, train prompts (teachers,
distill, adapt, spot), evaluate, predict, move prompts to/from PEFT, serve, and run training jobs."""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import backbone, data, peft, predict, serve, store, tasks, train, worker

# A command group is a module with register(subparsers); each of its commands names its handler with
# set_defaults(func=...). The handler returns what to print as JSON, or an exit status (an int) when
# it printed its own output. A group that takes the rest of the line unparsed sets passes_rest=True.
GROUPS = (backbone, data, train, predict, peft, store, serve, tasks, worker)

# Errors that mean "the request was wrong or the run failed", printed as one line (MPT_DEBUG=1: traceback).
USER_ERRORS = (ValueError, FileNotFoundError, RuntimeError, FloatingPointError)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mpt", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "passes_rest", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    try:
        result = args.func(args)
    except Exception as e:
        if os.environ.get("MPT_DEBUG") or not _is_user_error(e):
            raise
        print(f"mpt: error: {e}", file=sys.stderr)
        return 2
    if isinstance(result, int):
        return result
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


def _is_user_error(e: Exception) -> bool:
    from prompts_store import StoreError  # loaded only once something failed: torch stays out of `mpt serve`

    return isinstance(e, (StoreError, *USER_ERRORS))


if __name__ == "__main__":
    sys.exit(main())
