"""``train-beside-serve.json`` (``python -m bench.jobs.train_beside_serve``): serving's latency with and
without a training job running beside it, for several worker settings."""

from __future__ import annotations

from .markdown import sentence
from .markdown import table as md_table


def _range(values: list[float]) -> str:
    return f"{min(values):.0f}–{max(values):.0f}"


def table(result: dict) -> str:
    rows = []
    for v in result["variants"].values():
        without, with_ = v["without_job"], v["with_job"]
        rows.append(
            (
                f"`{v['worker_flags']}`" if v["worker_flags"].startswith("-") else v["worker_flags"],
                f"{without['p99_ms']:.0f} ms",
                f"{with_['p99_ms']:.0f} ms",
                f"**{v['p99_ratio']:.2f}**",
                f"{without['rps']:.0f} / {with_['rps']:.0f}",
                f"{with_['cpu_cores_used']['worker']:.2f}",
                _range(with_.get("job_steps_per_s", [0.0])),
            )
        )
    header = (
        "worker",
        "p99 without a job",
        "p99 with a job",
        "ratio",
        "requests/s without / with",
        "worker CPU (cores)",
        "job steps/s",
    )
    return f"{sentence(result['what'])} Target: {result['target']}.\n\n" + md_table(header, rows, "lrrrrrr")


def figures(result: dict) -> dict:
    return {f"{name}_p99_ratio": v["p99_ratio"] for name, v in result["variants"].items()} | {
        f"{name}_rps_ratio": v["rps_ratio"] for name, v in result["variants"].items()
    }
