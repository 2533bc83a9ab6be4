"""Copy adapted tasks, and the families they belong to, from a scratch store into the results store.

``run.sh`` adapts every target in a fresh copy of the source store (``P*`` + the 6 source tasks), so
that ``--init mean`` always averages the 6 source factors (the paper's init), never the factors of
targets adapted before; this then gathers the results in one store.

    python -m lab.glue.promote --from SCRATCH --to STORE [--overwrite] TASK...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from prompts_store import DirectoryStore, StoreError


def promote(src_dir: str | Path, dst_dir: str | Path, names: list[str], overwrite: bool = False) -> list[str]:
    src, dst = DirectoryStore(src_dir, create=False), DirectoryStore(dst_dir)
    for name in names:
        if not src.has_task(name):
            raise ValueError(f"{src_dir} has no task {name!r} (tasks: {src.list_tasks()})")
        task = src.get_task(name)
        family = src.get_family(task.family)
        if not dst.has_family(family.name):
            dst.put_family(family)
        else:
            old = dst.get_family(family.name)
            if old.shared.shape != family.shared.shape or not torch.equal(old.shared, family.shared):
                others = sorted(set(dst.list_tasks(family=family.name)) - set(names))
                if others or not overwrite:
                    raise ValueError(
                        f"family {family.name!r} in {dst_dir} holds a different shared prompt than in {src_dir}"
                        + (f" and other tasks trained against it: {others}" if others else "")
                        + "; use a fresh results store"
                        + ("" if others else " or --overwrite")
                    )
                dst.put_family(family, overwrite=True)
        dst.put_task(task, overwrite=overwrite)
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.glue.promote", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--from", dest="src", required=True)
    ap.add_argument("--to", dest="dst", required=True)
    ap.add_argument("--overwrite", action="store_true", help="replace tasks (and their own families) already there")
    ap.add_argument("tasks", nargs="+")
    args = ap.parse_args(argv)
    try:
        promote(args.src, args.dst, args.tasks, args.overwrite)
    except (ValueError, StoreError) as e:
        print(f"promote: error: {e}", file=sys.stderr)
        return 2
    print(f"promoted {', '.join(args.tasks)} -> {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
