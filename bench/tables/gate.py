"""``gate.json`` (``python -m lab.gate``): is the lab's backbone promptable? Two checks on dev inputs,
and the per-family figures behind them."""

from __future__ import annotations

from .markdown import num
from .markdown import table as md_table

CHECKS = {
    "frozen_prefixed_mean": "frozen backbone + text prefix: mean held-out score over the pretraining families",
    "pt_margin_over_random": "prompt tuning on this backbone minus the same on a random backbone of its shape",
}


def table(result: dict) -> str:
    checks = [
        (CHECKS.get(name, name), f"{c['value']:.3f}", f"≥ {c['threshold']:g}", "passed" if c["passed"] else "FAILED")
        for name, c in result["checks"].items()
    ]
    families = [
        (f"{name} ({f['n']:.0f})", f"{f['score']:.3f}", num(f.get("majority"), ".3f"))
        for name, f in result["frozen_prefixed"].items()
    ]
    per_row = 3  # families side by side: the list is long and each entry narrow
    rows = -(-len(families) // per_row)
    frozen = [sum((families[i] for i in range(r, len(families), rows)), ()) for r in range(rows)]
    frozen = [cells + ("", "", "") * (per_row - len(cells) // 3) for cells in frozen]
    pt = [
        (
            name,
            "yes" if p["seen_in_pretraining"] else "no",
            f"{p['pretrained_mean']:.3f}",
            f"{p['random_mean']:.3f}",
            num(p.get("majority"), ".3f"),
        )
        for name, p in result["prompt_tuning"].items()
    ]
    cfg = result["config"]
    return "\n\n".join(
        [
            f"Backbone `{cfg['backbone']}`: **{'passed' if result['passed'] else 'FAILED'}**.",
            md_table(("check", "measured", "bar", ""), checks, "lrrl"),
            "Frozen backbone with each family's text prefix, by family (dev examples): exact match, or token F1 "
            "for free-form answers, and the majority label's score where there are labels:",
            md_table(("family", "score", "majority") * per_row, frozen, "lrr" * per_row),
            f"Prompt tuning (l = {cfg['prompt_length']}, {cfg['steps']} steps, seeds "
            f"{', '.join(map(str, cfg['seeds']))}), mean exact match:",
            md_table(("target", "in pretraining", "this backbone", "random backbone", "majority label"), pt, "llrrr"),
        ]
    )


def figures(result: dict) -> dict:
    out = {name: c["value"] for name, c in result["checks"].items()}
    for name, p in result["prompt_tuning"].items():
        out[f"pt_{name}"] = p["pretrained_mean"]
        out[f"pt_random_{name}"] = p["random_mean"]
    return out
