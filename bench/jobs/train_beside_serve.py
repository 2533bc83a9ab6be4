"""Does a training job starve serving? Serving latency under load with and without a job running
beside it, on this machine's CPUs (not a unit test).

The demo as `make serve` runs it: a server process (`python -m service`, its defaults: two torch
threads) and a `mpt worker` process on the same store and CPUs. A closed loop of ``--concurrency``
clients keeps the server busy with one-input predictions over the demo tasks. Each round measures
a window with the worker idle, then one with the worker training (a long 16-example `factors` job,
cancelled after the window), so both conditions see the same background load; rounds alternate.
Each worker variant (its flags: threads, niceness, a sleep per step) gets its own rounds:

    default     mpt worker                          (one torch thread, nice 10)
    nice0       mpt worker --nice 0                 (one thread, the server's priority)
    greedy      mpt worker --nice 0 --threads 2     (what a plain training run would do)

Reported per variant: p50 / p99 with and without the job, their ratio (the target: p99 within
1.5x), requests/s, the CPU seconds the server and the worker used in the windows, and the job's
steps per second under the load. The machine's load average is recorded: other jobs on a shared
machine move these figures, so compare only figures of one run.

    python -m bench.jobs.train_beside_serve [--seconds 15 --rounds 3 --concurrency 8 --variants default nice0 greedy]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ..http_load import closed_loop, post_json
from .setup import FAMILY, ROOT, cpu_seconds, example_body, machine, seed_store, server, worker

OUT = ROOT / "bench" / "results" / "train-beside-serve.json"
VARIANTS = {
    "default": (),
    "nice0": ("--nice", "0"),
    "greedy": ("--nice", "0", "--threads", "2"),
}
INPUTS = {  # demo tasks and inputs of their held-out tests (demo/tasks.json)
    "review": "we had a bad evening .",
    "bigger": "van or drum ?",
    "is_bigger": "is a cheese bigger than a train ?",
    "boolq": "is eric a baker ? | the home of julia is in lima . eric works as a guard .",
}
LONG_STEPS = 1_000_000  # the job runs through the whole window; it is cancelled after


def load_window(url: str, seconds: float, concurrency: int) -> dict:
    host = url.split("//")[1]
    tasks = list(INPUTS)

    def request_for(w: int, k: int) -> bytes:
        task = tasks[(w + k) % len(tasks)]
        return post_json(host, "/predict", {"task": task}, {"inputs": INPUTS[task], "max_new_tokens": 4})

    result = asyncio.run(closed_loop(url, concurrency, seconds, request_for))
    return {**result.summary(), "latencies": result.latencies}


def window(url: str, pids: dict[str, int], seconds: float, concurrency: int) -> dict:
    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
    out = load_window(url, seconds, concurrency)
    out["cpu_s"] = {k: round(cpu_seconds(p) - cpu0[k], 2) for k, p in pids.items()}
    return out


def with_job(url: str, pids: dict[str, int], seconds: float, concurrency: int, name: str) -> dict:
    body = example_body(steps=LONG_STEPS)
    r = httpx.post(f"{url}/tasks/{name}/train", params={"family": FAMILY}, json=body, timeout=30)
    if r.status_code != 202:
        raise RuntimeError(f"submission refused: {r.status_code} {r.text}")
    job = r.json()["job"]
    deadline = time.monotonic() + 120
    while (info := httpx.get(f"{url}/jobs/{job}").json())["step"] < 5:  # running, past its first steps
        if time.monotonic() > deadline or info["status"] not in ("queued", "running"):
            raise RuntimeError(f"the job did not start: {info}")
        time.sleep(0.1)
    step0, t0 = info["step"], time.monotonic()
    out = window(url, pids, seconds, concurrency)
    info = httpx.get(f"{url}/jobs/{job}").json()
    out["job_steps_per_s"] = round((info["step"] - step0) / (time.monotonic() - t0), 2)
    httpx.delete(f"{url}/jobs/{job}", timeout=30)
    while httpx.get(f"{url}/jobs/{job}").json()["status"] == "running":
        time.sleep(0.1)
    return out


def pooled(windows: list[dict]) -> dict:
    lat = sorted(x for w in windows for x in w["latencies"])
    n = len(lat)
    seconds = sum(w["seconds"] for w in windows)
    cpu = {k: round(sum(w["cpu_s"][k] for w in windows) / seconds, 2) for k in windows[0]["cpu_s"]}
    out = {
        "requests": n,
        "errors": sum(w["errors"] for w in windows),
        "rps": round(n / seconds, 1),
        "p50_ms": round(1000 * lat[n // 2], 1),
        "p99_ms": round(1000 * lat[min(n - 1, int(n * 0.99))], 1),
        "cpu_cores_used": cpu,  # CPU seconds per second of window
        "p99_ms_per_window": [w["p99_ms"] for w in windows],
    }
    if "job_steps_per_s" in windows[0]:
        out["job_steps_per_s"] = [w["job_steps_per_s"] for w in windows]
    return out


def run_variant(url: str, store: str, server_pid: int, flags: tuple, args) -> dict:
    idle, busy = [], []
    with worker(store, "--poll-s", "0.2", *flags) as proc:
        pids = {"server": server_pid, "worker": proc.pid}
        time.sleep(8)  # the worker loads its model
        load_window(url, 3, args.concurrency)  # warm the server's paths
        for r in range(args.rounds):
            idle.append(window(url, pids, args.seconds, args.concurrency))
            busy.append(with_job(url, pids, args.seconds, args.concurrency, f"beside-{int(time.time() * 1000)}-{r}"))
    without, with_ = pooled(idle), pooled(busy)
    return {
        "worker_flags": " ".join(flags) or "(defaults)",
        "without_job": without,
        "with_job": with_,
        "p99_ratio": round(with_["p99_ms"] / without["p99_ms"], 2),
        "p50_ratio": round(with_["p50_ms"] / without["p50_ms"], 2),
        "rps_ratio": round(with_["rps"] / without["rps"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.jobs.train_beside_serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each window")
    ap.add_argument("--rounds", type=int, default=3, help="windows per condition and variant")
    ap.add_argument("--concurrency", type=int, default=8, help="closed-loop clients")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    before = machine()
    variants = {}
    with tempfile.TemporaryDirectory(prefix="mpt-beside-") as tmp:
        store = seed_store(Path(tmp))
        settings = {"max_job_steps": LONG_STEPS, "job_steps": 100, "job_timeout_s": 3600}
        with server(store, **settings) as (proc, url):
            for name in args.variants:
                variants[name] = run_variant(url, store, proc.pid, VARIANTS[name], args)
                print(name, json.dumps({k: v for k, v in variants[name].items()}), file=sys.stderr, flush=True)
    result = {
        "command": "python -m bench.jobs.train_beside_serve " + " ".join(sys.argv[1:] if argv is None else argv),
        "what": f"closed loop of {args.concurrency} clients, one-input predictions (4 new tokens) over 4 demo tasks; "
        "the server with its defaults; windows of "
        f"{args.seconds:g}s, {args.rounds} per condition, without / with a factors job training beside",
        "target": "p99 with a job within 1.5x of p99 without",
        "machine_before": before,
        "machine_after": machine(),
        "variants": variants,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: {m: v[m] for m in ("p99_ratio", "rps_ratio")} for k, v in variants.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
