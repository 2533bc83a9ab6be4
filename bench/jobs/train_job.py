"""Training through the API on the demo, timed and scored (CPU; not a unit test).

Runs the demo as `make serve` does (a server process and one `mpt worker` beside it, both with their
defaults, over a fresh SQLite copy of demo/store) and, for each seed, submits a 16-example `factors`
job of 100 steps for a task the demo store does not hold (the lab's rte: "does the first text
entail the second?"), then measures:

  queued -> served   from the POST to the first GET /predict?task=NAME that answers 200
  the job            queue wait, training time, final loss (GET /jobs/{id})
  accuracy           exact match (greedy answer) and rank accuracy (the better of the two labels)
                     on 200 held-out examples, through /predict
  same numbers       (first seed) u and v of the job against `mpt train adapt` on the same data,
                     seed and store, one torch thread as the worker: equal bit for bit?

    python -m bench.jobs.train_job [--seeds 0 1 2]      -> bench/results/train-job.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

from .setup import FAMILY, ROOT, example_body, lab_task, machine, seed_store, server, wait_job, worker
from .setup import MODEL as DEMO_MODEL

OUT = ROOT / "bench" / "results" / "train-job.json"


def queued_to_served(url: str, name: str, body: dict) -> dict:
    t0 = time.perf_counter()
    r = httpx.post(f"{url}/tasks/{name}/train", params={"family": FAMILY}, json=body, timeout=30)
    if r.status_code != 202:
        raise RuntimeError(f"submission refused: {r.status_code} {r.text}")
    job = r.json()["job"]
    while httpx.get(f"{url}/predict", params={"task": name, "input": "x"}, timeout=30).status_code != 200:
        if time.perf_counter() - t0 > 600:
            raise RuntimeError(f"{name} not served after 600 s: {httpx.get(f'{url}/jobs/{job}').text}")
        time.sleep(0.05)
    served = time.perf_counter() - t0
    info = wait_job(url, job)
    return {
        "job": job,
        "queued_to_served_s": round(served, 2),
        "status": info["status"],
        "elapsed_s": info["elapsed_s"],
        "loss": info["loss"],
        "created_at": info["created_at"],
        "started_at": info["started_at"],
        "finished_at": info["finished_at"],
    }


def accuracy(url: str, name: str, test) -> dict:
    labels = sorted({e.target for e in test})
    exact = ranked = 0
    for i in range(0, len(test), 32):
        chunk = test[i : i + 32]
        inputs = [e.input for e in chunk]
        gen = httpx.post(
            f"{url}/predict", params={"task": name}, json={"inputs": inputs, "max_new_tokens": 8}, timeout=60
        )
        ranks = httpx.post(
            f"{url}/predict", params={"task": name}, json={"inputs": inputs, "candidates": labels}, timeout=60
        )
        exact += sum(o.strip() == e.target for o, e in zip(gen.json()["outputs"], chunk))
        ranked += sum(o == e.target for o, e in zip(ranks.json()["outputs"], chunk))
    return {
        "heldout_examples": len(test),
        "exact_match": round(exact / len(test), 4),
        "rank_accuracy": round(ranked / len(test), 4),
    }


def same_as_cli(store_copy: str, served_store: str, name: str, body: dict, work: Path) -> dict:
    """`mpt train adapt` on the same examples, steps and seed, on a copy of the store as the job found it."""
    from mpt_cli.main import main as mpt
    from prompts_store import open_store

    data = work / "cli-data"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps(e) + "\n" for e in body["examples"]))
    torch.set_num_threads(1)  # as the worker (mpt worker --threads 1)
    argv = ["train", "adapt", "--model", str(DEMO_MODEL), "--device", "cpu", "--task", f"{name}={data}"]
    argv += ["--store", store_copy, "--family", FAMILY, "--mode", "factors", "--steps", str(body["steps"])]
    argv += ["--seed", str(body["seed"]), "--out", str(work / "cli-run")]
    code = mpt(argv)
    with open_store(store_copy) as a, open_store(served_store) as b:
        cli, job = a.get_task(name), b.get_task(name)
    equal = code == 0 and torch.equal(cli.u, job.u) and torch.equal(cli.v, job.v)
    return {
        "bit_identical_u_v": bool(equal),
        "max_abs_diff": float(max((cli.u - job.u).abs().max(), (cli.v - job.v).abs().max())),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.jobs.train_job", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="example draws and training seeds")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    from prompts_store import copy_store

    runs = []
    before = machine()
    with tempfile.TemporaryDirectory(prefix="mpt-train-job-") as tmp:
        work = Path(tmp)
        store = seed_store(work)
        with server(store) as (_, url), worker(store):
            for k, seed in enumerate(args.seeds):
                body = example_body(seed=seed)
                name = f"rte-{seed}"
                if k == 0:
                    copy = f"sqlite:///{work / 'cli.db'}"
                    copy_store(store, copy, progress=False)  # the store as the first job finds it
                run = {"seed": seed, "task": name, **queued_to_served(url, name, body)}
                run |= accuracy(url, name, lab_task(seed=seed, train=16, test=200).split("test"))
                if k == 0:
                    run["same_as_mpt_train_adapt"] = same_as_cli(copy, store, name, body, work)
                print(json.dumps(run), file=sys.stderr, flush=True)
                runs.append(run)
    served = [r["queued_to_served_s"] for r in runs]
    result = {
        "command": "python -m bench.jobs.train_job " + " ".join(sys.argv[1:] if argv is None else argv),
        "what": "16-example factors jobs of 100 steps on the demo (make serve's server + one mpt worker, defaults)",
        "task_family": "rte (the lab's, not in the demo store); examples: bench.jobs.setup.example_body(seed)",
        "machine_before": before,
        "machine_after": machine(),
        "queued_to_served_s": {"max": max(served), "mean": round(sum(served) / len(served), 2)},
        "exact_match_mean": round(sum(r["exact_match"] for r in runs) / len(runs), 4),
        "rank_accuracy_mean": round(sum(r["rank_accuracy"] for r in runs) / len(runs), 4),
        "majority_baseline": 0.5,
        "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
