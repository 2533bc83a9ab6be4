"""Scale-out benchmark on the CPU with the committed demo (not a unit test).

  throughput   predict requests/s through Ray Serve with 1 vs 2 replicas (one torch thread and one
               CPU each), and the plain server (`python -m service`, one torch thread) for reference.
               One local Ray cluster; the deployment is scaled in place between measurements, and
               the configurations are interleaved and repeated (the median is reported).
  propagation  an upload through one plain server -> the first 200 for that task from ANOTHER server
               process on the same store (50 uploads; p50/p99/max), and the store's own part of it:
               a commit -> a LISTEN/NOTIFY subscriber in another process has the change (PostgreSQL).
               Default store: a throw-away PostgreSQL server (tests/pg_server.py), seeded from the demo.

Results go to bench/results/scale-out.json (each experiment its own key, with the command and the
machine's load average). On a machine shared with other work the figures are noisy: say so.

    python -m bench.scale_out throughput [--duration 10 --repeats 3 --concurrency 32] [--haproxy]
    python -m bench.scale_out propagation [--uploads 50 --store postgresql|sqlite|directory|URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from .http_load import closed_loop, post_json

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL, DEMO_STORE = ROOT / "demo" / "backbone", ROOT / "demo" / "store"
TASKS = ["review", "sentiment", "bigger", "boolq", "nli", "qnli", "qqp", "is_bigger"]
INPUTS = ["a wonderful film with great music", "van or drum ?", "is the sea salty ?", "the plot was dull and slow"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _machine() -> dict:
    import torch

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def _wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                return
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not become ready")
        time.sleep(0.1)


@contextlib.contextmanager
def plain_server(store: str, threads: int = 1, **settings):
    """``python -m service`` in a subprocess on ``store``; yields its URL once ready."""
    port = _free_port()
    env = dict(
        os.environ,
        MPT_MODEL=str(DEMO_MODEL),
        MPT_STORE=store,
        MPT_PORT=str(port),
        MPT_LOG_LEVEL="warning",
        OMP_NUM_THREADS=str(threads),
        **{f"MPT_{k.upper()}": str(v) for k, v in settings.items()},
    )
    proc = subprocess.Popen([sys.executable, "-m", "service"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def drive(url: str, concurrency: int, seconds: float) -> dict:
    host = url.split("//", 1)[1]
    cache: dict[tuple[int, int], bytes] = {}

    def request_for(w: int, k: int) -> bytes:
        key = ((w + k) % len(TASKS), (w * 7 + k) % len(INPUTS))
        if key not in cache:
            body = {"inputs": INPUTS[key[1]], "max_new_tokens": 4}
            cache[key] = post_json(host, "/predict", {"task": TASKS[key[0]]}, body)
        return cache[key]

    return asyncio.run(closed_loop(url, concurrency, seconds, request_for)).summary()


def median_run(runs: list[dict]) -> dict:
    best = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return best | {"rps_all": [r["rps"] for r in runs]}


# ---- throughput --------------------------------------------------------------------------------
def throughput(args: argparse.Namespace) -> dict:
    if args.haproxy:  # Ray's HAProxy ingress instead of its Python proxy (read when Ray loads)
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
    import ray
    from ray import serve

    from service.runtime.ray_app import build
    from service.runtime.ray_settings import RaySettings
    from service.settings import Settings

    runs: dict[str, list[dict]] = {"plain_1thread": [], "ray_1_replica": [], "ray_2_replicas": []}
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "store")
        shutil.copytree(DEMO_STORE, store)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        settings = Settings(model=str(DEMO_MODEL), store=store, port=port, log_level="warning", max_wait_ms=2)
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            for rep in range(args.repeats):  # interleaved, so drift hits every configuration alike
                for name, replicas in (("ray_1_replica", 1), ("ray_2_replicas", 2), ("plain_1thread", 0)):
                    if replicas:
                        rs = RaySettings(replicas=replicas, num_cpus=1, torch_threads=1)
                        serve.run(build(settings, rs), name="mpt", route_prefix="/")
                        _wait_ready(url)
                        seen = {httpx.get(f"{url}/health/ready").headers["x-mpt-replica"] for _ in range(30)}
                        assert len(seen) == replicas, f"expected {replicas} replicas answering, saw {seen}"
                        drive(url, args.concurrency, 2.0)  # warm-up
                        runs[name].append(drive(url, args.concurrency, args.duration))
                    else:
                        with plain_server(store, threads=1, max_wait_ms=2) as plain:
                            drive(plain, args.concurrency, 2.0)
                            runs[name].append(drive(plain, args.concurrency, args.duration))
                    print(f"repeat {rep + 1}/{args.repeats} {name}: {runs[name][-1]['rps']} req/s", file=sys.stderr)
        finally:
            serve.shutdown()
            ray.shutdown()
    med = {k: median_run(v) for k, v in runs.items()}
    return {
        "model": "demo/backbone (T5, d_model 128, 4+4 layers), demo store, l = 16",
        "ray_ingress": "HAProxy (RAY_SERVE_ENABLE_HA_PROXY=1)" if args.haproxy else "Ray's HTTP proxy (default)",
        "request": {"inputs": 1, "max_new_tokens": 4, "concurrency": args.concurrency, "tasks": len(TASKS)},
        "runs": med,
        "ray_2_vs_1": round(med["ray_2_replicas"]["rps"] / med["ray_1_replica"]["rps"], 3),
        "ray_1_vs_plain": round(med["ray_1_replica"]["rps"] / med["plain_1thread"]["rps"], 3),
    }


# ---- propagation -------------------------------------------------------------------------------
def _pct(samples: list[float]) -> dict:
    s = sorted(samples)
    n = len(s)
    return {
        "n": n,
        "p50_ms": round(s[n // 2], 2),
        "p99_ms": round(s[min(n - 1, int(n * 0.99))], 2),
        "max_ms": round(s[-1], 2),
    }


@contextlib.contextmanager
def store_for(kind: str):
    """(store URL, label) seeded from the demo store."""
    from prompts_store import copy_store

    with tempfile.TemporaryDirectory() as tmp:
        if kind == "postgresql":
            sys.path.insert(0, str(ROOT))
            from tests.pg_server import local_postgres

            with local_postgres() as pg:
                url = pg.new_database("bench")
                copy_store(DEMO_STORE, url, progress=False)
                yield url, "postgresql (throw-away local server, Unix socket)"
            return
        if kind == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'store.db'}"
            copy_store(DEMO_STORE, url, progress=False)
            yield url, "sqlite"
        elif kind == "directory":
            shutil.copytree(DEMO_STORE, Path(tmp) / "store")
            yield str(Path(tmp) / "store"), "directory"
        else:
            yield kind, "given URL"


NOTIFY_CHILD = """
import sys, time
from prompts_store import open_store
store = open_store(sys.argv[1])
since = store.head()
def woken(seq):
    global since
    for c in store.changes(since):  # what a server's sync does when woken
        print(c.name, time.monotonic(), flush=True)
        since = c.seq
store.subscribe(woken)
print("listening", flush=True)
sys.stdin.read()  # until the parent closes it
"""


def notify_latency(url: str, n: int) -> dict:
    """ms from a commit returning in this process to another process having read the change."""
    from mpt_core import Task
    from prompts_store import open_store

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", NOTIFY_CHILD, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout.readline().strip() == "listening"
    acked = {}
    with open_store(url) as store:
        template = store.get_task(store.list_tasks(limit=1)[0])
        for i in range(n):
            store.put_task(Task(f"notify{i:03d}", template.family, template.u, template.v))
            acked[f"notify{i:03d}"] = time.monotonic()
            time.sleep(0.02)
    time.sleep(0.5)
    out, _ = child.communicate("", timeout=30)
    seen = {name: float(t) for name, t in (line.split() for line in out.splitlines())}
    return _pct([1000 * (seen[k] - t) for k, t in acked.items()])


async def _served_elsewhere(a: str, b: str, n: int, family: str, d: int, length: int) -> list[float]:
    """Upload through ``a``; ms from its 201 to ``b``'s first 200 for that task."""
    import random

    rnd = random.Random(0)
    samples = []
    async with httpx.AsyncClient(timeout=60) as client:
        for i in range(n):
            body = {
                "name": f"prop{i:03d}",
                "family": family,
                "u": [rnd.gauss(0, 1) for _ in range(length)],
                "v": [rnd.gauss(0, 1) for _ in range(d)],
            }
            r = await client.post(f"{a}/tasks", json=body)
            assert r.status_code == 201, r.text
            acked = time.perf_counter()
            while (
                await client.get(f"{b}/predict", params={"task": f"prop{i:03d}", "input": "x", "max_new_tokens": 1})
            ).status_code != 200:
                pass
            samples.append(1000 * (time.perf_counter() - acked))
            await asyncio.sleep(0.05)
    return samples


def propagation(args: argparse.Namespace) -> dict:
    from prompts_store import open_store

    with store_for(args.store) as (url, label):
        with open_store(url) as s:
            fam = s.family_info(s.list_families()[0])
        out: dict = {"store": label, "store_poll_s": args.poll_s}
        if url.startswith(("postgresql://", "postgres://")):
            out["commit_to_notified_reader"] = notify_latency(url, args.uploads)
        with (
            plain_server(url, threads=1, store_poll_s=args.poll_s) as a,
            plain_server(url, threads=1, store_poll_s=args.poll_s) as b,
        ):
            samples = asyncio.run(_served_elsewhere(a, b, args.uploads, fam.name, fam.d, fam.l))
        out["upload_to_served_by_other_server"] = _pct(samples)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=["throughput", "propagation", "all"])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per throughput measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--haproxy", action="store_true", help="throughput: through Ray's HAProxy ingress (experimental)")
    ap.add_argument("--uploads", type=int, default=50)
    ap.add_argument("--store", default="postgresql", help="propagation: postgresql, sqlite, directory or a URL")
    ap.add_argument("--poll-s", type=float, default=1.0, help="propagation: MPT_STORE_POLL_S of both servers")
    ap.add_argument("--note", help="a remark stored with the figures (e.g. what the run was special in)")
    ap.add_argument("--out", default="bench/results/scale-out.json")
    args = ap.parse_args(argv)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {}
    command = "python -m bench.scale_out " + shlex.join(argv if argv is not None else sys.argv[1:])
    for name, run in (("throughput", throughput), ("propagation", propagation)):
        if args.experiment in (name, "all"):
            key = f"{name}_haproxy" if name == "throughput" and args.haproxy else name
            before = _machine()
            figures = run(args)
            result[key] = {"command": command, "machine": before, "load_avg_after": _machine()["load_avg_1_5_15"]}
            if args.note:
                result[key]["note"] = args.note
            result[key] |= figures
            print(json.dumps({key: figures}, indent=2))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
