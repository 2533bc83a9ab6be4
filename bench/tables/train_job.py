"""``train-job.json`` (``python -m bench.jobs.train_job``): training jobs through the API on the demo,
from the POST to the first prediction served, and the held-out accuracy of what they trained."""

from __future__ import annotations

from .markdown import num, sentence
from .markdown import table as md_table


def table(result: dict) -> str:
    rows = [
        (
            r["task"],
            r["seed"],
            r["status"],
            f"{r['queued_to_served_s']:.1f} s",
            f"{r['elapsed_s']:.1f} s",
            f"{r['exact_match']:.3f}",
            num(r.get("rank_accuracy"), ".3f"),
            r["heldout_examples"],
        )
        for r in result["runs"]
    ]
    rows.append(
        (
            "mean",
            "",
            "",
            f"{result['queued_to_served_s']['mean']:.1f} s",
            "",
            f"{result['exact_match_mean']:.3f}",
            num(result.get("rank_accuracy_mean"), ".3f"),
            "",
        )
    )
    rows.append(("always one label", "", "", "", "", f"{result['majority_baseline']:.3f}", "", ""))
    same = [r["same_as_mpt_train_adapt"] for r in result["runs"] if "same_as_mpt_train_adapt" in r]
    check = ""
    if same:
        identical = all(s["bit_identical_u_v"] for s in same)
        worst = max(s["max_abs_diff"] for s in same)
        verdict = "bit-identical" if identical else f"max abs difference {worst:.3g}"
        checked = ", ".join(r["task"] for r in result["runs"] if "same_as_mpt_train_adapt" in r)
        check = (
            f"\n\nThe factors that {'this job' if len(same) == 1 else 'these jobs'} trained, against those of "
            f"`mpt train adapt` on the same data and seed: {verdict} ({checked})."
        )
    return (
        sentence(result["what"])
        + "\n\n"
        + md_table(
            (
                "task",
                "seed",
                "status",
                "POST → first prediction",
                "job ran",
                "held-out exact match",
                "rank accuracy",
                "test examples",
            ),
            rows,
            "lrlrrrrr",
        )
        + check
    )


def figures(result: dict) -> dict:
    served = [r["queued_to_served_s"] for r in result["runs"]]
    return {
        "served_min_s": min(served),
        "served_max_s": max(served),
        "exact_match_min": min(r["exact_match"] for r in result["runs"]),
        "exact_match_max": max(r["exact_match"] for r in result["runs"]),
        "jobs": len(result["runs"]),
    }
