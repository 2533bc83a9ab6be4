"""Markdown tables and the accuracy-vs-shots plot of a grid result (``bench/results/accuracy.json``)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

METRIC = "exact_match"
SHOTS_ORDER = ["4", "16", "32", "full"]


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _fmt(values: list[float]) -> str:
    if not values:
        return "–"
    m, s = _mean_std(values)
    return f"{m:.3f} ± {s:.3f}"


def cell_values(rows: list[dict], metric: str = METRIC) -> dict[tuple[str, str, str], list[float]]:
    """(method, target, shots) -> one value per seed."""
    out: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for r in rows:
        if r["metric"] == metric and r["method"] != "majority":
            out[(r["method"], r["target"], r["shots"])].append(r["value"])
    return out


def average_over_targets(
    rows: list[dict], targets: list[str], metric: str = METRIC
) -> dict[tuple[str, str], list[float]]:
    """(method, shots) -> per seed, the mean over ``targets`` (std is then across seeds)."""
    per_seed: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for r in rows:
        if r["metric"] == metric and r["method"] != "majority" and r["target"] in targets:
            per_seed[(r["method"], r["shots"], r["seed"])].append(r["value"])
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (m, s, _), vals in sorted(per_seed.items(), key=lambda kv: str(kv[0])):
        if len(vals) == len(targets):
            out[(m, s)].append(statistics.mean(vals))
    return out


def markdown(result: dict) -> str:
    rows, cfg = result["rows"], result["config"]
    targets = list(result["targets"])
    seen = [t for t in targets if result["targets"][t]["seen_in_pretraining"]]
    unseen = [t for t in targets if not result["targets"][t]["seen_in_pretraining"]]
    methods = [m for m in cfg["methods"]]
    shots = [s for s in SHOTS_ORDER if any(r["shots"] == s for r in rows if r["method"] != "majority")]
    params = {r["method"]: r["trainable_params"] for r in rows if r["method"] != "majority"}
    majority = {r["target"]: r["value"] for r in rows if r["method"] == "majority"}
    cells = cell_values(rows)
    groups = [(name, ts) for name, ts in (("seen avg", seen), ("unseen avg", unseen), ("all avg", targets)) if ts]
    avgs = {name: average_over_targets(rows, ts) for name, ts in groups}
    head = ["method", "params"] + [f"{t}{'' if t in seen else ' (unseen)'}" for t in targets] + list(avgs)
    out = [
        f"Held-out test exact match, mean ± std over seeds {cfg['seeds']} (l = {cfg['prompt_length']}, "
        f"{cfg['target_steps']} target steps). Unseen = task family never in pretraining (its words and facts are in "
        f"the world text, as C4 mentions what GLUE asks). Seeds vary the target stage (init, k-shot sample, batch "
        f"order); the source stage is trained once, seed 0. Every setting, few-shot included, selects its checkpoint "
        f"on {cfg['dev_examples']} dev examples.",
        "",
    ]
    for s in shots:
        out += [
            f"### {'full data (' + str(cfg['train_examples']) + ' examples)' if s == 'full' else s + '-shot'}",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for m in methods:
            line = [m, f"{params.get(m, 0):,}"] + [_fmt(cells.get((m, t, s), [])) for t in targets]
            line += [_fmt(a.get((m, s), [])) for a in avgs.values()]
            out.append("| " + " | ".join(line) + " |")
        maj = ["majority", "0"] + [f"{majority[t]:.3f}" if t in majority else "–" for t in targets]
        maj += [
            f"{statistics.mean(majority[t] for t in ts):.3f}" if all(t in majority for t in ts) else "–"
            for _, ts in groups
        ]
        out += ["| " + " | ".join(maj) + " |", ""]
    out += ["Ranking by the target average (all targets), per shots setting:", ""]
    for s in shots:
        ranked = sorted(methods, key=lambda m: -statistics.mean(avgs["all avg"].get((m, s), [float("nan")])))
        out.append(
            f"- {s}: "
            + " > ".join(
                f"{m} ({statistics.mean(avgs['all avg'][(m, s)]):.3f})" for m in ranked if (m, s) in avgs["all avg"]
            )
        )
    return "\n".join(out) + "\n"


def plot(result: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, targets = result["rows"], list(result["targets"])
    groups = [
        ("seen targets", [t for t in targets if result["targets"][t]["seen_in_pretraining"]]),
        ("unseen targets", [t for t in targets if not result["targets"][t]["seen_in_pretraining"]]),
    ]
    groups = [g for g in groups if g[1]]
    shots = [s for s in SHOTS_ORDER if any(r["shots"] == s for r in rows if r["method"] != "majority")]
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.2), squeeze=False)
    for ax, (title, ts) in zip(axes[0], groups):
        avg = average_over_targets(rows, ts)
        for m in result["config"]["methods"]:
            xs = [i for i, s in enumerate(shots) if (m, s) in avg]
            means = [_mean_std(avg[(m, shots[i])])[0] for i in xs]
            stds = [_mean_std(avg[(m, shots[i])])[1] for i in xs]
            ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=m)
        maj = [r["value"] for r in rows if r["method"] == "majority" and r["target"] in ts]
        if len(maj) == len(ts):
            ax.axhline(statistics.mean(maj), color="grey", ls="--", lw=1, label="majority")
        ax.set_xticks(range(len(shots)), [s if s == "full" else f"k={s}" for s in shots])
        ax.set_title(f"{title}: {', '.join(ts)}", fontsize=9)
        ax.set_xlabel("training examples")
        ax.set_ylabel("held-out exact match (target mean)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
