"""``train-job-cuda.json`` (``bench/jobs/train_job_gpu.py``): the same training job timed on a GPU,
from queued to succeeded, through the store and a worker."""

from __future__ import annotations

from .markdown import sentence
from .markdown import table as md_table


def table(result: dict) -> str:
    rows = [
        (
            r["job"],
            f"{r['queued_to_succeeded_s']:.2f} s",
            f"{r['queue_wait_s'] * 1000:.0f} ms",
            f"{r['train_s']:.2f} s",
            f"{r['step_ms']:.1f} ms",
        )
        for r in result["runs"]
    ]
    warm = result["warm_queued_to_succeeded_s"]
    caption = (
        f"{sentence(result['what'])} {result['device_name']}, {result['dtype']}, torch {result['torch']}; "
        f"the first job runs on a cold worker. Warm jobs: mean {warm['mean']:.2f} s, at most {warm['max']:.2f} s."
    )
    return (
        caption + "\n\n" + md_table(("job", "queued → succeeded", "queue wait", "training", "per step"), rows, "rrrrr")
    )


def figures(result: dict) -> dict:
    times = [r["queued_to_succeeded_s"] for r in result["runs"]]
    return {
        "min_s": min(times),
        "max_s": max(times),
        "mean_warm_s": result["warm_queued_to_succeeded_s"]["mean"],
        "step_ms_mean": result["warm_step_ms_mean"],
    }
