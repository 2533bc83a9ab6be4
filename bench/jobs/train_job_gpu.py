"""How long a training job takes from queued to succeeded, on a GPU or the CPU, through the store and
the worker directly (no HTTP: it needs only python3 + torch + transformers + safetensors + tokenizers
+ numpy, and this repository). Not a unit test.

A fresh SQLite copy of the committed demo store (family ``lab``, the demo backbone), one worker
(training.worker.Worker, the loop of ``mpt worker``) in a thread of this process on ``--device``,
and ``--jobs`` jobs submitted one after another, each the README's: the 16 examples of
demo/jobs/rte.json, mode factors, 100 steps. Per job: queued -> succeeded (wall clock here, from
the submit call to the poll that sees it succeeded, and by the store's timestamps), its queue wait
and training time. The worker warms up (one throwaway step, training.warm_up) before the first job
is submitted, as a deployed worker does before jobs come (its time is reported); the first job is
still reported apart ("cold"), and the rest are the warm figure.

    python bench/jobs/train_job_gpu.py --device cuda      # the GPU figure (issue: within 3 s)
    python bench/jobs/train_job_gpu.py --device cpu       # the same on the CPU, for comparison
    ... --profile                                    # + one more job under torch.profiler: where a step goes

``--profile`` runs one more warm job in this thread under torch.profiler (CPU, and CUDA on a GPU) and
writes the operator table next to ``--out`` (``<out>.profile.txt``, else to stderr), with per-step
counts of kernel launches, host<->device copies and device syncs in the JSON. The profiled job is
slower than the timed ones and is not counted in them.

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

ROOT = Path(__file__).resolve().parents[2]
# run as a script from anywhere: the repository's packages first, not this folder's modules
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (ROOT, ROOT / "bench")]
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from mpt_core.backbone import load_backbone  # noqa: E402
from prompts_store import JobSpec, copy_store, open_store  # noqa: E402
from training.config import WorkerConfig  # noqa: E402
from training.worker import Worker  # noqa: E402

BODY = ROOT / "demo" / "jobs" / "rte.json"


def run_job(store, name: str, spec: JobSpec, poll_s: float) -> dict:
    t0 = time.perf_counter()
    job = store.submit_job(name, "lab", "factors", spec)
    # the light read (no spec) of the job's row: this poll shares the process (and its GIL) with training
    while (now := store.list_jobs(after=job.id - 1, limit=1)[0]).status in ("queued", "running"):
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
        "step_ms": round(1000 * (now.finished_at - now.started_at) / now.steps, 2),
        "final_loss": now.loss,
    }


SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")


def profile_job(worker: Worker, store, spec: JobSpec, out: str | None) -> dict:
    """One more job, run in this thread under torch.profiler; the table goes to ``<out>.profile.txt``."""
    from torch.profiler import ProfilerActivity, profile

    worker.stop.clear()  # the worker thread has stopped; this job runs here, to its end
    job = store.submit_job("rte-gpu-profiled", "lab", "factors", spec)
    claimed = store.claim_job(worker.id, 600)
    if claimed is None or claimed.id != job.id:
        raise RuntimeError("the profiled job was not the one claimed")
    if worker.backbone.device.type == "cuda":
        torch.cuda.synchronize()
    cuda = worker.backbone.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    t0 = time.perf_counter()
    with profile(activities=activities) as prof:
        ended = worker.run_job(claimed)
    wall = time.perf_counter() - t0
    events = prof.key_averages()
    count = {e.key: e.count for e in events}
    per_step = lambda n: round(n / spec.steps, 1)  # noqa: E731
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    table = events.table(sort_by="self_cpu_time_total", row_limit=40)
    if cuda:
        table += "\n\n" + events.table(sort_by=sort, row_limit=25)
    if out:
        Path(out).with_suffix(".profile.txt").write_text(table + "\n")
    else:
        print(table, file=sys.stderr)
    return {
        "status": ended.status if ended is not None else "lost",
        "wall_s_under_profiler": round(wall, 3),
        "file": str(Path(out).with_suffix(".profile.txt")) if out else None,
        "per_step": {
            "aten_ops": per_step(sum(e.count for e in events if e.key.startswith("aten::"))),
            "kernel_launches": per_step(count.get("cudaLaunchKernel", 0) + count.get("cudaLaunchKernelExC", 0)),
            "memcpy_calls": per_step(count.get("cudaMemcpyAsync", 0)),
            "device_syncs": per_step(sum(count.get(k, 0) for k in SYNC_CALLS)),
            "item_reads": per_step(count.get("aten::_local_scalar_dense", 0)),
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="backbone dtype")
    ap.add_argument("--jobs", type=int, default=4, help="jobs, one after another (the first is the cold one)")
    ap.add_argument("--steps", type=int, default=None, help="steps per job (default: the body's, 100)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (as mpt worker's default)")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--profile", action="store_true", help="then one more job under torch.profiler (see above)")
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
        t0 = time.perf_counter()
        thread.start()
        if not worker.ready.wait(timeout=300):  # as a deployed worker: warmed up before the first job comes
            raise RuntimeError("the worker did not warm up within 300 s")
        warm_up_s = time.perf_counter() - t0
        runs = [run_job(store, f"rte-gpu-{k}", spec, poll_s=0.01) for k in range(args.jobs)]
        worker.stop.set()
        thread.join(timeout=60)
        profiled = None
        if args.profile:
            try:
                profiled = profile_job(worker, store, spec, args.out)
            except Exception as e:  # the timed figures above stand without it
                profiled = {"error": f"{type(e).__name__}: {e}"}
        store.close()
    warm = runs[1:] or runs
    result = {
        "command": "python bench/jobs/train_job_gpu.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "what": f"queued -> succeeded of a {len(spec.examples)}-example factors job of {spec.steps} steps "
        "(demo backbone, family lab, SQLite store, one worker in this process; poll 10 ms)",
        "device": str(backbone.device),
        "device_name": torch.cuda.get_device_name(backbone.device)
        if backbone.device.type == "cuda"
        else platform.processor(),
        "dtype": args.dtype,
        "torch": torch.__version__,
        "backbone_load_s": round(load_s, 2),
        "worker_warm_up_s": round(warm_up_s, 2),
        "cold_queued_to_succeeded_s": runs[0]["queued_to_succeeded_s"],
        "warm_queued_to_succeeded_s": {
            "max": max(r["queued_to_succeeded_s"] for r in warm),
            "mean": round(sum(r["queued_to_succeeded_s"] for r in warm) / len(warm), 3),
        },
        "target": "within 3 s on a GPU (issue 13)",
        "warm_step_ms_mean": round(sum(r["step_ms"] for r in warm) / len(warm), 2),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "runs": runs,
    }
    if profiled is not None:
        result["profile"] = profiled
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
