"""SQLite store at scale: write N demo-shaped tasks (l=16, d=128, r=1) in batches, then time the
bulk load (in a fresh process, for its own peak RSS), one change through the feed, and a page.

    python -m bench.store_bench --tasks 1000000 --db /tmp/store-bench.db

Prints one JSON object. Timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from mpt_core import Family, Task
from prompts_store import SQLiteStore

L, D = 16, 128


def write(db: Path, n: int, batch: int) -> dict:
    store = SQLiteStore(db)
    store.put_family(Family("fam", torch.randn(L, D), {"d_model": D}))
    g = torch.Generator().manual_seed(0)
    build = put = 0.0
    for start in range(0, n, batch):
        t0 = time.perf_counter()
        k = min(batch, n - start)
        u, v = torch.randn(k, L, 1, generator=g), torch.randn(k, D, 1, generator=g)
        tasks = [Task(f"t{start + i:07d}", "fam", u[i], v[i]) for i in range(k)]
        t1 = time.perf_counter()
        store.put_tasks(tasks)
        build, put = build + t1 - t0, put + time.perf_counter() - t1
    store.close()
    size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    return {"build_tasks_s": round(build, 1), "put_tasks_s": round(put, 1), "file_bytes": size}


def read(db: Path, n: int) -> dict:
    """Run in a fresh process: its peak RSS is the bulk load's."""
    store = SQLiteStore(db, create=False)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    head = store.head()
    t0 = time.perf_counter()
    rows = sum(len(c) for c in store.iter_task_chunks())
    bulk = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert rows == n, (rows, n)

    writer = SQLiteStore(db)
    writer.put_task(Task("t0000123", "fam", torch.ones(L, 1), torch.ones(D, 1)), overwrite=True)
    t0 = time.perf_counter()
    feed = store.changes(head)
    change = time.perf_counter() - t0
    assert [c.name for c in feed] == ["t0000123"]

    rng = random.Random(0)
    page_ms = []
    for _ in range(200):
        after = f"t{rng.randrange(n):07d}"
        t0 = time.perf_counter()
        page = store.list_tasks(after=after, limit=100)
        page_ms.append((time.perf_counter() - t0) * 1000)
        assert len(page) <= 100
    page_ms.sort()
    return {
        "bulk_load_s": round(bulk, 2),
        "bulk_peak_rss_mb": round(rss1 / 1024, 1),
        "rss_before_bulk_mb": round(rss0 / 1024, 1),
        "changes_one_of_n_ms": round(change * 1000, 2),
        "list_tasks_limit100_p50_ms": round(page_ms[100], 3),
        "list_tasks_limit100_p99_ms": round(page_ms[197], 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--db", type=Path, default=Path("/tmp/store-bench.db"))
    ap.add_argument("--read-only", action="store_true", help="(internal) the read phase, in its own process")
    args = ap.parse_args()
    if args.read_only:
        print(json.dumps(read(args.db, args.tasks)))
        return
    for p in args.db.parent.glob(args.db.name + "*"):
        p.unlink()
    out = {"tasks": args.tasks, "batch": args.batch, **write(args.db, args.tasks, args.batch)}
    child = [sys.executable, "-m", "bench.store_bench", "--read-only", "--tasks", str(args.tasks), "--db", str(args.db)]
    out.update(json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
