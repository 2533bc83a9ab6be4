"""``mpt serve``: hands every following argument to ``service.__main__`` (``mpt serve --help``), or with
``--ray`` to ``service.runtime.ray_main``: replicas on Ray Serve (``mpt serve --ray --help``), plus, with
``--workers N`` (``--worker-cpus``, ``--worker-gpus``), N training workers beside them (mpt_cli.ray_workers)."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="run the HTTP server (needs the [serve] extra; see mpt serve --help); "
        "--ray --replicas N [--workers N]: on Ray Serve, with training workers "
        "(the [ray] extra; see mpt serve --ray --help)",
        add_help=False,
    )
    p.set_defaults(func=run_serve, passes_rest=True)


def run_serve(args: argparse.Namespace) -> int:
    if "--ray" in args.rest:
        try:
            from service.runtime.ray_main import main as ray_main
        except ImportError as e:
            print(f"mpt serve --ray: the server needs the [serve] extra ({e})", file=sys.stderr)
            return 2
        from .ray_workers import HELP, companions, split_flags

        try:
            workers, rest = split_flags(args.rest)
        except ValueError as e:
            print(f"mpt serve --ray: {e}", file=sys.stderr)
            return 2
        try:
            return ray_main(rest, lambda settings, rs: companions(settings, rs, workers))
        except SystemExit:  # --help printed the server's and Ray's flags: add the workers'
            if "-h" in rest or "--help" in rest:
                print(HELP)
            raise
    try:
        from service.__main__ import main as serve_main
    except ImportError as e:
        print(
            f"mpt serve: the server needs the [serve] extra ({e}); run `make serve` or pip install 'mpt-serve[serve]'",
            file=sys.stderr,
        )
        return 2
    return serve_main(args.rest)
