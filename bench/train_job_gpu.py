"""How long a training job takes from queued to succeeded, on a GPU or the CPU, through the store and
the worker directly (no HTTP: it needs only python3 + torch + transformers + safetensors + tokenizers
+ numpy, and this repository). Not a unit test.

A fresh SQLite copy of the committed demo store (family ``lab``, the demo backbone), one worker
(training.worker.Worker, the loop of ``mpt worker``) in a thread of this process on ``--device``,
and ``--jobs`` jobs submitted one after another, each the README's: the 16 examples of
demo/jobs/rte.json, mode factors, 100 steps. Per job: queued -> succeeded (wall clock here, from
the submit call to the poll that sees it succeeded, and by the store's timestamps), its queue wait
and training time. The first job on a fresh process pays one-time costs (CUDA context, kernels,
allocator): it is reported, and the rest are the warm figure.

    python bench/train_job_gpu.py --device cuda      # the GPU figure (issue: within 3 s)
    python bench/train_job_gpu.py --device cpu       # the same on the CPU, for comparison

Prints one JSON object (also written to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# run as a script from anywhere: the repository's packages first, not this folder's modules
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (ROOT, ROOT / "bench")]
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from prompts_store import JobSpec, copy_store, open_store  # noqa: E402
from prompts_store.backbone import load_backbone  # noqa: E402
from training.config import WorkerConfig  # noqa: E402
from training.worker import Worker  # noqa: E402

BODY = ROOT / "demo" / "jobs" / "rte.json"


def run_job(store, name: str, spec: JobSpec, poll_s: float) -> dict:
    t0 = time.perf_counter()
    job = store.submit_job(name, "lab", "factors", spec)
    while (now := store.get_job(job.id)).status in ("queued", "running"):
        time.sleep(poll_s)
    wall = time.perf_counter() - t0
    if now.status != "succeeded":
        raise RuntimeError(f"job {job.id} {now.status}: {now.error}")
    return {
        "job": job.id,
        "queued_to_succeeded_s": round(wall, 3),
        "store_elapsed_s": round(now.finished_at - now.created_at, 3),
        "queue_wait_s": round(now.started_at - now.created_at, 3),
        "train_s": round(now.finished_at - now.started_at, 3),
        "final_loss": now.loss,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="backbone dtype")
    ap.add_argument("--jobs", type=int, default=4, help="jobs, one after another (the first is the cold one)")
    ap.add_argument("--steps", type=int, default=None, help="steps per job (default: the body's, 100)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (as mpt worker's default)")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(json.dumps({"error": f"--device {args.device}: torch sees no CUDA device"}))
        return 2
    torch.set_num_threads(args.threads)
    body = json.loads(BODY.read_text())
    spec = JobSpec(examples=body["examples"], steps=args.steps or body["steps"], seed=body["seed"])
    with tempfile.TemporaryDirectory(prefix="mpt-train-job-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'store.db'}"
        copy_store(ROOT / "demo" / "store", url, progress=False)
        store = open_store(url)
        t0 = time.perf_counter()
        backbone = load_backbone(str(ROOT / "demo" / "backbone"), args.device, args.dtype)
        load_s = time.perf_counter() - t0
        worker = Worker(backbone, store, WorkerConfig(worker_id="bench", poll_s=0.01, threads=args.threads))
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        runs = [run_job(store, f"rte-gpu-{k}", spec, poll_s=0.01) for k in range(args.jobs)]
        worker.stop.set()
        thread.join(timeout=60)
        store.close()
    warm = runs[1:] or runs
    result = {
        "command": "python bench/train_job_gpu.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "what": f"queued -> succeeded of a {len(spec.examples)}-example factors job of {spec.steps} steps "
        "(demo backbone, family lab, SQLite store, one worker in this process; poll 10 ms)",
        "device": str(backbone.device),
        "device_name": torch.cuda.get_device_name(backbone.device)
        if backbone.device.type == "cuda"
        else platform.processor(),
        "dtype": args.dtype,
        "torch": torch.__version__,
        "backbone_load_s": round(load_s, 2),
        "cold_queued_to_succeeded_s": runs[0]["queued_to_succeeded_s"],
        "warm_queued_to_succeeded_s": {
            "max": max(r["queued_to_succeeded_s"] for r in warm),
            "mean": round(sum(r["queued_to_succeeded_s"] for r in warm) / len(warm), 3),
        },
        "target": "within 3 s on a GPU (issue 13)",
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "runs": runs,
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
