"""``serve.json`` (``python -m bench.serve_bench``): micro-batching, many tasks vs one, upload latency."""

from __future__ import annotations

from .markdown import num
from .markdown import table as md_table


def _target(result: dict, key: str, unit: str = "") -> str:
    t = result.get("targets", {}).get(key)
    if not t:
        return "–"
    bound = str(t["target"]).replace(">=", "≥").replace("<=", "≤")
    return f"{bound}{unit}: {'met' if t['met'] else 'missed'}"


def table(result: dict) -> str:
    t, up = result["throughput"], result["upload_to_first_prediction"]
    b1, u1, b32 = t["batched_1task"], t["unbatched_1task"], t["batched_32tasks"]
    f = figures(result)
    rows = [
        (
            "micro-batching vs `max_batch=1` (req/s)",
            f"{num(b1['rps'], ',.0f')} vs {num(u1['rps'], ',.0f')}: **{f['batching_speedup']:.2f}×** "
            f"(p50 {num(b1['p50_ms'], '.0f')} vs {num(u1['p50_ms'], '.0f')} ms)",
            _target(result, "batching_speedup"),
        ),
        (
            "32 distinct tasks vs one task, same load (req/s)",
            f"{num(b32['rps'], ',.0f')} vs {num(b1['rps'], ',.0f')}: **{f['tenants_32_vs_1']:.3f}**",
            _target(result, "tenants_32_vs_1"),
        ),
        (
            "upload (`PUT /tasks/{name}`) → first successful prediction, p99",
            f"**{num(up['idle']['p99_ms'])} ms** idle, {num(up['under_load']['p99_ms'])} ms under "
            f"{up['under_load']['background_clients']} clients' load",
            _target(result, "upload_p99_ms", " ms"),
        ),
    ]
    m, r = result["model"], result["request"]
    caption = (
        f"Tiny T5 (d_model {m['d_model']}, {m['layers']} layers, l = {m['prompt_length']}); "
        f"{r['concurrency']} concurrent clients, {r['inputs']} input and {r['max_new_tokens']} new tokens per request; "
        f"median of {len(b1['rps_all'])} interleaved repeats."
    )
    return caption + "\n\n" + md_table(("figure", "measured", "target"), rows)


def figures(result: dict) -> dict:
    """The two ratios (as the run recorded them, else from its requests/s)."""
    t, recorded = result["throughput"], result.get("targets", {})
    computed = {
        "batching_speedup": t["batched_1task"]["rps"] / t["unbatched_1task"]["rps"],
        "tenants_32_vs_1": t["batched_32tasks"]["rps"] / t["batched_1task"]["rps"],
    }
    return {k: recorded[k]["value"] if k in recorded else v for k, v in computed.items()}
