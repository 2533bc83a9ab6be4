"""HTTP serving benchmark on the CPU with a tiny T5 (not a unit test).

Runs the real server (`python -m service`) in a subprocess and drives it over HTTP from this
process with N concurrent clients, in three experiments:

  batching   throughput with micro-batching (max_batch=32) vs the same server with max_batch=1
  tenants    throughput when the load spreads over 32 distinct tasks vs all on one task
  upload     latency from the start of an upload (PUT /tasks/{name}) to the first successful
             prediction of that task, idle and under load

Configurations are interleaved and repeated; the median of the repeats is reported. Results
go to bench/results/serve.json with the command line that produced them.

    python -m bench.serve_bench [--duration 8 --repeats 3 --concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

from mpt_core import Family, Task, backbone_fingerprint
from prompts_store import DirectoryStore

from .http_load import closed_loop, post_json

INPUTS = [
    "big or small : the ocean",
    "is a dog an animal ?",
    "hot or cold : the snow at night",
    "review: the old film was great and the music was wonderful",
    "which is larger, a city or a letter ?",
]


def build_fixture(work: Path, d_model: int, layers: int, length: int, tasks: int) -> tuple[Path, Path]:
    from transformers import AutoModelForSeq2SeqLM

    from training.tiny import TinyConfig, build_tiny_backbone

    model = build_tiny_backbone(work / "t5", TinyConfig(d_model=d_model, layers=layers))
    fp = backbone_fingerprint(AutoModelForSeq2SeqLM.from_pretrained(model, use_safetensors=True), str(model))
    store = DirectoryStore(work / "store")
    g = torch.Generator().manual_seed(0)
    store.put_family(Family("fam", torch.randn(length, d_model, generator=g), fp))
    for k in range(tasks):
        store.put_task(Task(f"t{k}", "fam", torch.randn(length, 1, generator=g), torch.randn(d_model, 1, generator=g)))
    return model, work / "store"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(model: Path, store: Path, **settings):
    port = _free_port()
    env = dict(
        os.environ,
        MPT_MODEL=str(model),
        MPT_STORE=str(store),
        MPT_PORT=str(port),
        MPT_LOG_LEVEL="warning",
        **{f"MPT_{k.upper()}": str(v) for k, v in settings.items()},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "service"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"server did not become ready: {proc.stderr.read() if proc.poll() is not None else ''}"
                )
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def drive(url: str, concurrency: int, seconds: float, task_of, body: dict) -> dict:
    """Closed-loop load: ``concurrency`` clients, each sending its next request when the last returns."""
    host = url.split("//", 1)[1]
    requests = {}

    def request_for(w: int, k: int) -> bytes:
        key = (task_of(w, k), (w + k) % len(INPUTS))
        if key not in requests:
            requests[key] = post_json(host, "/predict", {"task": key[0]}, body | {"inputs": INPUTS[key[1]]})
        return requests[key]

    return asyncio.run(closed_loop(url, concurrency, seconds, request_for)).summary()


async def upload_latency(url: str, d_model: int, length: int, n: int, background: int) -> dict:
    """ms from the start of PUT /tasks/{name} to the first 200 from /predict for that task."""
    g = torch.Generator().manual_seed(1)
    samples = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        stop = asyncio.Event()

        async def noise(w: int) -> None:
            while not stop.is_set():
                await client.post(
                    "/predict", params={"task": f"t{w % 4}"}, json={"inputs": INPUTS[w % 5], "max_new_tokens": 4}
                )

        bg = [asyncio.create_task(noise(w)) for w in range(background)]
        await asyncio.sleep(0.5 if background else 0)
        for i in range(n):
            body = {
                "family": "fam",
                "u": torch.randn(length, generator=g).tolist(),
                "v": torch.randn(d_model, generator=g).tolist(),
            }
            t0 = time.perf_counter()
            r = await client.put(f"/tasks/up-{i}", json=body)
            assert r.status_code in (200, 201), r.text
            while (
                await client.post("/predict", params={"task": f"up-{i}"}, json={"inputs": "x", "max_new_tokens": 1})
            ).status_code != 200:
                pass
            samples.append(1000 * (time.perf_counter() - t0))
        stop.set()
        await asyncio.gather(*bg)
    samples.sort()
    return {
        "n": n,
        "background_clients": background,
        "p50_ms": round(samples[n // 2], 2),
        "p99_ms": round(samples[min(n - 1, int(n * 0.99))], 2),
        "max_ms": round(samples[-1], 2),
    }


def median_run(runs: list[dict]) -> dict:
    best = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return best | {"rps_all": [r["rps"] for r in runs]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--prompt-length", type=int, default=20)
    ap.add_argument("--uploads", type=int, default=200)
    ap.add_argument("--out", default="bench/results/serve.json")
    args = ap.parse_args(argv)
    body = {"max_new_tokens": args.max_new_tokens}
    c = args.concurrency
    result: dict = {
        "command": "python -m bench.serve_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "model": {"d_model": args.d_model, "layers": args.layers, "prompt_length": args.prompt_length},
        "request": {"inputs": 1, "max_new_tokens": args.max_new_tokens, "concurrency": c},
    }
    with tempfile.TemporaryDirectory() as tmp:
        model, store = build_fixture(Path(tmp), args.d_model, args.layers, args.prompt_length, tasks=32)
        runs: dict[str, list[dict]] = {"batched_1task": [], "unbatched_1task": [], "batched_32tasks": []}
        for rep in range(args.repeats):  # interleaved, so drift hits every configuration alike
            for name, settings, task_of in (
                ("batched_1task", {"max_batch": 32, "max_wait_ms": 2}, lambda w, k: "t0"),
                ("unbatched_1task", {"max_batch": 1, "max_wait_ms": 0}, lambda w, k: "t0"),
                ("batched_32tasks", {"max_batch": 32, "max_wait_ms": 2}, lambda w, k: f"t{(w + k) % 32}"),
            ):
                with running_server(model, store, **settings) as url:
                    drive(url, c, 1.0, task_of, body)  # warm-up
                    runs[name].append(drive(url, c, args.duration, task_of, body))
                print(f"repeat {rep + 1}/{args.repeats} {name}: {runs[name][-1]['rps']} req/s", file=sys.stderr)
        med = {k: median_run(v) for k, v in runs.items()}
        with running_server(model, store, max_batch=32, max_wait_ms=2) as url:
            idle = asyncio.run(upload_latency(url, args.d_model, args.prompt_length, args.uploads, background=0))
            loaded = asyncio.run(upload_latency(url, args.d_model, args.prompt_length, args.uploads // 2, background=8))
    speedup = med["batched_1task"]["rps"] / med["unbatched_1task"]["rps"]
    tenants = med["batched_32tasks"]["rps"] / med["batched_1task"]["rps"]
    result["throughput"] = med
    result["upload_to_first_prediction"] = {"idle": idle, "under_load": loaded}
    result["targets"] = {
        "batching_speedup": {"value": round(speedup, 2), "target": ">= 5", "met": speedup >= 5},
        "tenants_32_vs_1": {"value": round(tenants, 3), "target": ">= 0.95", "met": tenants >= 0.95},
        "upload_p99_ms": {"value": idle["p99_ms"], "target": "< 100", "met": idle["p99_ms"] < 100},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["targets"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
