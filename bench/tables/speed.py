"""``speed-*.json`` (``python -m bench.speed``): the engine against PEFT on one device, one line per
figure measured (a phase skipped or failed has no line)."""

from __future__ import annotations

from .markdown import table as md_table


def _caption(result: dict) -> str:
    s, v = result["shape"], result["versions"]
    threads = f", {result['threads']} threads" if result.get("threads") else ""
    head = (
        f"{result['device_name']} ({result['device']}{threads}), torch {v['torch']}, transformers "
        f"{v['transformers']}, PEFT {v['peft']}; T5 of d_model {s['d_model']} × {s['layers']} layers, "
        f"l = {s['prompt_len']}, inputs of ~{s['input_len']} tokens, {s['dtype']}."
    )
    if not result.get("fast_path_active", True):
        head += "\n\n**The fast path failed its check against the reference path: engine = reference path.**"
    return head


def table(result: dict) -> str:
    f, s = result.get("figures", {}), result["shape"]
    B = s["batch"]
    label = f"{s['candidates']} candidates" + (" (1 decoder step)" if s["candidate_tokens"] == 1 else "")
    cpu = result["device"] == "cpu"

    def row(name, fig, engine, peft, ratio):
        by_cpu = [f"{fig['ratio_cpu_time']:.2f}" + ("×" if "×" in ratio else "")] if cpu else []
        return (name, engine, peft, ratio, *by_cpu)

    header = ("figure", "engine", "PEFT", "engine / PEFT", *(["same, by CPU time"] if cpu else []))
    rows = []
    if (gen := f.get(f"generate_b{B}")) is not None:
        rows.append(
            row(
                f"generate {s['new_tokens']} tokens, batch {B} (req/s)",
                gen,
                f"{gen['engine_rps']:,.1f}",
                f"{gen['peft_rps']:,.1f}",
                f"{gen['ratio']:.2f}×",
            )
        )
    if (sc := f.get(f"score_b{B}")) is not None:
        rows.append(
            row(
                f"score {label}, batch {B} (req/s)",
                sc,
                f"{sc['engine_rps']:,.1f}",
                f"{sc['peft_rps']:,.1f}",
                f"{sc['ratio']:.2f}×",
            )
        )
    for key, what in (("latency_b1_generate", "generate"), ("latency_b1_score", f"score {label}")):
        if (lat := f.get(key)) is not None:
            rows.append(
                row(
                    f"batch-1 latency, {what} (p50 ms)",
                    lat,
                    f"{lat['engine_p50_ms']:.1f}",
                    f"{lat['peft_p50_ms']:.1f}",
                    f"{lat['ratio']:.2f}",
                )
            )
    if (ten := f.get("tenancy_1000")) is not None:
        by_cpu = (
            [f"{ten['times']['single']['cpu_median_s'] / ten['times']['mixed']['cpu_median_s']:.3f}"] if cpu else []
        )
        name = f"{ten['distinct_tasks_in_batch']} distinct of 1,000 tasks per batch vs 1 task (req/s)"
        rows.append(
            (name, f"{ten['mixed_rps']:,.1f}", f"{ten['single_rps']:,.1f} (1 task)", f"{ten['ratio']:.3f}", *by_cpu)
        )
    if (http := f.get("http")) is not None:
        rows.append(
            (
                f"HTTP, concurrency {http['concurrency']}, score 2 candidates (req/s)",
                f"{http['rps']:,.1f}",
                f"{http['engine_rps']:,.1f} (engine)",
                f"{http['ratio']:.2f} of the engine",
                *(["–"] if cpu else []),
            )
        )
    if (eager := f.get(f"score_b{B}_eager_fast_path")) is not None:
        rows.append(
            (
                f"score, batch {B}: fast path without compile / CUDA graphs (req/s)",
                f"{eager['rps']:,.1f}",
                f"{eager['engine_rps']:,.1f} (with)",
                "–",
                *(["–"] if cpu else []),
            )
        )
    problems = {k: v["status"] for k, v in result.get("phases", {}).items() if v.get("status") != "ok"}
    tail = "".join(f"\n\nPhase {k}: {v}" for k, v in problems.items())
    return _caption(result) + "\n\n" + md_table(header, rows, "lrrrr") + tail


def figures(result: dict) -> dict:
    """Every ratio the run recorded (``score_b256``, ``tenancy_1000``, ...), and each figure's
    engine and PEFT throughput (``score_b256_engine_rps``)."""
    out = dict(result.get("ratios", {}))
    for key, fig in result.get("figures", {}).items():
        for field in ("engine_rps", "peft_rps", "rps", "engine_p50_ms", "peft_p50_ms", "ratio"):
            if isinstance(fig, dict) and isinstance(fig.get(field), (int, float)):
                out[f"{key}_{field}"] = fig[field]
    return out
