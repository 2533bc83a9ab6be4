"""``accuracy*.json`` (``python -m lab.accuracy``): the accuracy lab's comparison grid. First the
averages over each group of targets, one table per group (methods by training-set size), then the
lab's own per-target tables (``lab.report.markdown``)."""

from __future__ import annotations

import statistics

from lab.report import SHOTS_ORDER, average_over_targets, markdown

from .markdown import table as md_table

NBSP = "\u00a0"  # "0.812 ± 0.021" stays on one line in a narrow cell


def _groups(result: dict) -> dict[str, list[str]]:
    targets = result["targets"]
    seen = [t for t in targets if targets[t]["seen_in_pretraining"]]
    unseen = [t for t in targets if not targets[t]["seen_in_pretraining"]]
    groups = {f"seen targets ({', '.join(seen)})": seen, f"unseen targets ({', '.join(unseen)})": unseen}
    groups["all targets"] = list(targets)
    return {name: ts for name, ts in groups.items() if ts}


def _shots(result: dict) -> list[str]:
    rows = [r for r in result["rows"] if r["method"] != "majority"]
    return [s for s in SHOTS_ORDER if any(r["shots"] == s for r in rows)]


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f}{NBSP}±{NBSP}{std:.3f}"


def summary(result: dict) -> str:
    rows, cfg = result["rows"], result["config"]
    shots = _shots(result)
    params = {r["method"]: r["trainable_params"] for r in rows if r["method"] != "majority"}
    majority = {r["target"]: r["value"] for r in rows if r["method"] == "majority"}
    head = ["method", "trainable"] + [f"full ({cfg['train_examples']})" if s == "full" else f"k = {s}" for s in shots]
    parts = []
    for name, targets in _groups(result).items():
        avg = average_over_targets(rows, targets)
        lines = [[m, f"{params.get(m, 0):,}"] + [_cell(avg.get((m, s), [])) for s in shots] for m in cfg["methods"]]
        if all(t in majority for t in targets):
            baseline = statistics.mean(majority[t] for t in targets)
            lines.append(["majority label", "0"] + [f"{baseline:.3f}"] * len(shots))
        parts.append(f"**{name[:1].upper()}{name[1:]}**\n\n" + md_table(head, lines, "lr" + "r" * len(shots)))
    return "\n\n".join(parts)


def table(result: dict) -> str:
    cells, source = result["cells"], result["source_stage"]
    head = (
        f"Grid `{result['preset']}` on backbone `{result['config']['backbone']}`: {cells['total']} cells "
        f"({cells['reused']} of them reused from earlier runs with the same settings); target training "
        f"{cells['target_seconds'] / 60:.1f} min summed over cells; source stage {source['seconds'] / 60:.1f} min. "
        "Held-out test exact match, the mean over each group's targets, mean ± std over seeds:"
    )
    detail = markdown(result).replace(" ± ", f"{NBSP}±{NBSP}").replace("### ", "#### ").strip()
    # named sections: a page may include the summary and the detail apart (--8<-- "accuracy.md:detail")
    return (
        f"<!-- --8<-- [start:summary] -->\n{head}\n\n{summary(result)}\n<!-- --8<-- [end:summary] -->\n\n"
        f"### Per target\n\n<!-- --8<-- [start:detail] -->\n{detail}\n<!-- --8<-- [end:detail] -->"
    )


def figures(result: dict) -> dict:
    """Means over seeds of each target group's average, by ``GROUP_METHOD_SHOTS`` (``seen_mpt-full_4``,
    ``all_pt_full``), for prose that quotes one of them."""
    targets = result["targets"]
    groups = {
        "seen": [t for t in targets if targets[t]["seen_in_pretraining"]],
        "unseen": [t for t in targets if not targets[t]["seen_in_pretraining"]],
        "all": list(targets),
    }
    out = {}
    for group, names in groups.items():
        if names:
            for (method, shots), values in average_over_targets(result["rows"], names).items():
                out[f"{group}_{method}_{shots}"] = statistics.mean(values)
    return out
