"""``mpt serve``: hands every following argument to ``service.__main__`` (``mpt serve --help``)."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "serve", help="run the HTTP server (needs the [serve] extra; see mpt serve --help)", add_help=False
    )
    p.set_defaults(func=run_serve, passes_rest=True)


def run_serve(args: argparse.Namespace) -> int:
    try:
        from service.__main__ import main as serve_main
    except ImportError as e:
        print(
            f"mpt serve: the server needs the [serve] extra ({e}); run `make serve` or pip install 'mpt-serve[serve]'",
            file=sys.stderr,
        )
        return 2
    return serve_main(args.rest)
