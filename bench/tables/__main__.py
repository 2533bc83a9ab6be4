"""``python -m bench.tables [--check] [NAME ...]``: write (or check) the markdown table of every result."""

from __future__ import annotations

import argparse
import sys

from . import ROOT, names, stale, write


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.tables", description=__doc__)
    ap.add_argument("names", nargs="*", help="results to render (default: every bench/results/*.json)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when a table is not current")
    args = ap.parse_args(argv)
    if args.check:
        problems = stale()
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print("run `python -m bench.tables` to regenerate the tables", file=sys.stderr)
        return 1 if problems else 0
    for name in args.names or names():
        print(f"wrote {write(name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
