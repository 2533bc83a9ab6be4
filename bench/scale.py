"""Tenant scale: one server with 1 to 10^6 resident tasks (the committed demo backbone, family
``lab``: l = 16, d = 128, r = 1; CPU; a SQLite store), one row per task count.

    python -m bench.scale                          # 1, 10^3, 10^4, 10^5, 10^6 -> bench/results/scale.json
    python -m bench.scale --tasks 1,1000 --out /tmp/scale.json      # a quick look

Each row measures, on a fresh copy of a store holding N tasks (populated once per N and seed with
``Store.put_task_chunk`` and cached in build/scale/):
- ``ready_s``: process start -> /health/ready 200 (imports, backbone, bulk load, warm-up);
  ``bulk_load_s``: the bulk load alone, from the server's log;
- ``rss_per_task_b``: (RSS at N - RSS at 1) / (N - 1) minus the task's (l + d)·r·4 = 576 bytes of
  factors (noise dominates below 10^5);
- ``cross_process_ms``: PUT through a SECOND server on the same store -> first 200 from /predict
  on the first (50 uploads, at random phases of MPT_STORE_POLL_S);
- ``same_server_ms``: PUT -> first 200 from /predict on the same server while 8 clients predict
  (``put_ms``: until the PUT's 201, by which the task is served);
- ``list_ms``: ``GET /tasks?limit=100&after=<a random name>``;
- ``predict_rps``: 8 closed-loop clients predicting (greedy, up to 4 tokens) over random resident
  tasks, and its ratio to the row with 1 task. A batch runs until its longest answer ends, and
  tasks of random factors answer with different lengths: the ratio also measures that workload;
- ``score_rps``: the same with label scoring (2 candidates: one decoder pass per row, the same work
  whatever the task), and its ratio to the row with 1 task.
Timings depend on the machine and on what else runs on it: each row records the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import torch

from mpt_core.artifacts import utc_now
from prompts_store import DirectoryStore, SQLiteStore, TaskChunk

from .http_load import LoadResult, _read_response, post_json

MODEL, DEMO_STORE, FAMILY, L, D = "demo/backbone", "demo/store", "lab", 16, 128
COUNTS = (1, 1_000, 10_000, 100_000, 1_000_000)
INPUTS = ["big or small : the ocean", "is a dog an animal ?", "hot or cold : snow", "the old film was great"]
BODY = {"max_new_tokens": 4}  # greedy generation: a batch runs until its longest answer ends
SCORE_BODY = {"candidates": ["yes", "no"]}  # label scoring: the same work per row whatever the task


def populate(n: int, seed: int, cache: Path) -> Path:
    """A SQLite store with the demo family and tasks s0000000.. of random factors (cached)."""
    db = cache / f"store-{n}-seed{seed}.db"
    if db.exists():
        return db
    cache.mkdir(parents=True, exist_ok=True)
    part = cache / f"{db.name}.part"
    for p in cache.glob(part.name + "*"):
        p.unlink()
    t0 = time.perf_counter()
    store = SQLiteStore(part)
    store.put_family(DirectoryStore(DEMO_STORE, create=False).get_family(FAMILY))
    g = torch.Generator().manual_seed(seed)
    step = 50_000
    for start in range(0, n, step):
        k = min(step, n - start)
        names = [f"s{i:07d}" for i in range(start, start + k)]
        u, v = torch.randn(k, L, 1, generator=g), torch.randn(k, D, 1, generator=g)
        store.put_task_chunk(TaskChunk(L, D, 1, names, [FAMILY] * k, [utc_now()] * k, ["bench"] * k, u, v))
    store.close()  # the last connection checkpoints the WAL into the file
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            (cache / (part.name + suffix)).rename(cache / (db.name + suffix))
    part.rename(db)
    print(f"populated {n} tasks in {time.perf_counter() - t0:.1f}s -> {db}", file=sys.stderr)
    return db


@contextlib.contextmanager
def server(store_url: str, log: Path, poll_s: float):
    """A `python -m service` process; yields (url, pid, seconds from start to ready)."""
    with socket_port() as port:
        env = dict(os.environ, MPT_MODEL=MODEL, MPT_STORE=store_url, MPT_PORT=str(port), MPT_STORE_POLL_S=str(poll_s))
        env |= {"MPT_LOG_LEVEL": "info", "MPT_MAX_QUEUE": "4096"}
        t0 = time.perf_counter()
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "service"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            if proc.poll() is not None or time.perf_counter() - t0 > 600:
                raise RuntimeError(f"server did not become ready; see {log}")
            time.sleep(0.05)
        yield url, proc.pid, time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=120)


@contextlib.contextmanager
def socket_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def pct(samples: list[float]) -> dict:
    s = sorted(samples)
    n = len(s)
    return {"n": n, "p50": round(s[n // 2], 2), "p99": round(s[min(n - 1, int(n * 0.99))], 2), "max": round(s[-1], 2)}


def upload_body(rng: torch.Generator) -> dict:
    return {"family": FAMILY, "u": torch.randn(L, generator=rng).tolist(), "v": torch.randn(D, generator=rng).tolist()}


async def first_prediction(client: httpx.AsyncClient, name: str, t0: float, deadline_s: float = 30) -> float:
    """Predict ``name`` until it answers 200; ms since t0."""
    while True:
        r = await client.post("/predict", params={"task": name}, json={"inputs": "x", "max_new_tokens": 1})
        if r.status_code == 200:
            return 1000 * (time.perf_counter() - t0)
        if time.perf_counter() - t0 > deadline_s:
            raise RuntimeError(f"{name} not served within {deadline_s}s: {r.status_code} {r.text}")
        await asyncio.sleep(0.005)


async def cross_process(url_a: str, url_b: str, n: int, poll_s: float) -> list[float]:
    g, rng = torch.Generator().manual_seed(2), random.Random(2)
    out = []
    async with httpx.AsyncClient(base_url=url_a, timeout=60) as a, httpx.AsyncClient(base_url=url_b, timeout=60) as b:
        for i in range(n):
            await asyncio.sleep(rng.uniform(0, poll_s))  # a random phase of the poll
            t0 = time.perf_counter()
            r = await b.put(f"/tasks/cross-{i}", json=upload_body(g))
            assert r.status_code in (200, 201), r.text
            out.append(await first_prediction(a, f"cross-{i}", t0))
    return out


async def predict_load(
    url: str, names: list[str], workers: int, stop: asyncio.Event, seed: int, body: dict = BODY
) -> LoadResult:
    host, result = url.split("//", 1)[1], LoadResult()

    async def worker(w: int) -> None:
        rng = random.Random(seed * 1000 + w)
        reader, writer = await asyncio.open_connection(*host.split(":"))
        try:
            while not stop.is_set():
                request = body | {"inputs": rng.choice(INPUTS)}
                t0 = time.perf_counter()
                writer.write(post_json(host, "/predict", {"task": rng.choice(names)}, request))
                status, _ = await _read_response(reader)
                if status == 200:
                    result.latencies.append(time.perf_counter() - t0)
                else:
                    result.errors += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    result.seconds = time.perf_counter() - t0
    return result


async def same_server(url: str, names: list[str], n: int) -> tuple[list[float], list[float], dict]:
    """n uploads while 8 clients predict: (PUT -> 201 ms, PUT -> first prediction ms, the load's summary)."""
    stop, g = asyncio.Event(), torch.Generator().manual_seed(3)
    load = asyncio.create_task(predict_load(url, names, 8, stop, seed=1))
    put_ms, served_ms = [], []
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        await asyncio.sleep(1.0)
        for i in range(n):
            t0 = time.perf_counter()
            r = await c.put(f"/tasks/local-{i}", json=upload_body(g))
            assert r.status_code in (200, 201), r.text
            put_ms.append(1000 * (time.perf_counter() - t0))
            served_ms.append(await first_prediction(c, f"local-{i}", t0))
            await asyncio.sleep(0.05)
    stop.set()
    return put_ms, served_ms, (await load).summary()


async def listing(url: str, names: list[str], seconds: float) -> list[float]:
    host, rng, out = url.split("//", 1)[1], random.Random(4), []
    reader, writer = await asyncio.open_connection(*host.split(":"))
    try:
        stop_at = time.perf_counter() + seconds
        while time.perf_counter() < stop_at:
            query = f"limit=100&after={rng.choice(names)}" if len(out) % 10 else "limit=100"
            t0 = time.perf_counter()
            writer.write(f"GET /tasks?{query} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            status, body = await _read_response(reader)
            assert status == 200 and body.startswith(b'{"tasks"'), body[:200]
            out.append(1000 * (time.perf_counter() - t0))
    finally:
        writer.close()
    return out


def metric(url: str, name: str) -> float:
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    return sum(float(x.rsplit(" ", 1)[1]) for x in lines if x.startswith(name + " ") or x.startswith(name + "{"))


def measure(n: int, args: argparse.Namespace, base: dict | None) -> dict:
    cache = Path(args.cache)
    db = populate(n, args.seed, cache)
    run = cache / f"run-{n}.db"
    shutil.copyfile(db, run)  # uploads go to a copy: the cached store stays as populated
    url_run, names = f"sqlite:///{run}", [f"s{i:07d}" for i in range(n)]
    row: dict = {"tasks": n, "load_avg_before": round(os.getloadavg()[0], 2)}
    try:
        with server(url_run, cache / f"server-a-{n}.log", args.poll_s) as (a, pid, ready_s):
            rss = rss_bytes(pid)
            log = (cache / f"server-a-{n}.log").read_text()
            loaded = re.search(r"loaded \d+ tasks of \d+ families in ([\d.]+)s", log)
            row |= {
                "ready_s": round(ready_s, 2),
                "bulk_load_s": float(loaded.group(1)) if loaded else None,
                "rss_mb": round(rss / 2**20, 1),
                "table_bytes": int(metric(a, "mpt_prompt_table_bytes")),
            }
            if base is not None and n > 1:
                extra = (rss - base["rss_bytes"]) / (n - 1) - (L + D) * 4
                row["rss_per_task_b"] = round(extra, 1)
            row["rss_bytes"] = rss
            with server(url_run, cache / f"server-b-{n}.log", args.poll_s) as (b, _, _):
                row["cross_process_ms"] = pct(asyncio.run(cross_process(a, b, args.uploads, args.poll_s)))
            put_ms, served_ms, load = asyncio.run(same_server(a, names, args.uploads))
            row["same_server_ms"] = pct(served_ms) | {"put_p99": pct(put_ms)["p99"], "load": load}
            row["list_ms"] = pct(asyncio.run(listing(a, names, args.seconds / 2)))
            for key, body in (("predict", BODY), ("score", SCORE_BODY)):
                runs = []
                for k in range(args.repeats):
                    stop = asyncio.Event()

                    async def timed(stop=stop, k=k, body=body):
                        task = asyncio.create_task(predict_load(a, names, 8, stop, seed=10 + k, body=body))
                        await asyncio.sleep(args.seconds)
                        stop.set()
                        return await task

                    runs.append(asyncio.run(timed()).summary())
                best = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
                row[f"{key}_rps"] = best["rps"]
                row[f"{key}_rps_all"] = [r["rps"] for r in runs]
                row[f"{key}_p99_ms"] = best["p99_ms"]
                if base is not None:
                    row[f"{key}_rps_vs_1"] = round(best["rps"] / base[f"{key}_rps"], 3)
            row["sync_lag_p_count"] = metric(a, "mpt_store_sync_lag_seconds_count")
    finally:
        for p in cache.glob(run.name + "*"):
            p.unlink()
    row["load_avg_after"] = round(os.getloadavg()[0], 2)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(map(str, COUNTS)), help="comma-separated task counts (1 first)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--uploads", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=8.0, help="per throughput run (listing: half)")
    ap.add_argument("--repeats", type=int, default=3, help="throughput runs per row (the median is kept)")
    ap.add_argument("--poll-s", type=float, default=1.0, help="MPT_STORE_POLL_S of both servers")
    ap.add_argument("--cache", default="build/scale", help="populated stores (reused) and server logs")
    ap.add_argument("--out", default="bench/results/scale.json")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.tasks.split(",")]
    if counts[0] != 1:
        counts.insert(0, 1)  # the baseline of the per-task RSS and of the throughput ratio
    rows, base = [], None
    for n in counts:
        row = measure(n, args, base)
        base = base or row
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    meta = {
        "command": "python -m bench.scale " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "poll_s": args.poll_s,
        "factor_bytes_per_task": (L + D) * 4,
    }
    for row in rows:
        row.pop("rss_bytes", None)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([meta | r for r in rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
