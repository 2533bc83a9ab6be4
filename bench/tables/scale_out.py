"""``scale-out.json`` (``python -m bench.scale_out``): replicas' throughput, and an upload's propagation
between servers on one PostgreSQL store."""

from __future__ import annotations

from .markdown import num
from .markdown import table as md_table

RUNS = {
    "plain_1thread": "plain `mpt serve`, one torch thread",
    "ray_1_replica": "Ray Serve, 1 replica",
    "ray_2_replicas": "Ray Serve, 2 replicas",
}
INGRESS = {"throughput": "Ray's proxy", "throughput_haproxy": "HAProxy (`--haproxy`)"}


def table(result: dict) -> str:
    parts = []
    sections = [k for k in INGRESS if k in result]
    if sections:
        rows = []
        for key in sections:
            s = result[key]
            for run, label in RUNS.items():
                r = s["runs"].get(run)
                if r is None:
                    continue
                extra = f" ({s['ray_2_vs_1']:.2f}× one replica)" if run == "ray_2_replicas" else ""
                rows.append(
                    (INGRESS[key], label, num(r["rps"], ",.0f") + extra, f"{r['p50_ms']:,.0f} / {r['p99_ms']:,.0f}")
                )
        first = result[sections[0]]
        req = first["request"]
        parts.append(
            f"Predict throughput: {first['model']}; {req['concurrency']} clients over {req['tasks']} tasks, "
            f"{req['inputs']} input and {req['max_new_tokens']} new tokens per request; median of "
            f"{len(first['runs']['plain_1thread']['rps_all'])} interleaved repeats. Each ingress was measured in a run "
            "of its own, beside its own plain server: compare rows of one ingress.\n\n"
            + md_table(("ingress", "server", "requests/s", "p50 / p99 ms"), rows, "llrr")
        )
    if (p := result.get("propagation")) is not None:
        up, feed = p["upload_to_served_by_other_server"], p["commit_to_notified_reader"]
        rows = [
            (
                "upload through one server → another server answers 200",
                up["n"],
                num(up["p50_ms"]),
                num(up["p99_ms"]),
                num(up["max_ms"]),
            ),
            (
                "commit → another process, woken by `NOTIFY`, has read the change",
                feed["n"],
                num(feed["p50_ms"]),
                num(feed["p99_ms"]),
                num(feed["max_ms"]),
            ),
        ]
        parts.append(
            f"Propagation between servers on one store, {p['store']}; "
            f"`MPT_STORE_POLL_S` = {p['store_poll_s']:g} s:\n\n"
            + md_table(("ms", "n", "p50", "p99", "max"), rows, "lrrrr")
        )
    return "\n\n".join(parts)


def figures(result: dict) -> dict:
    out = {}
    if "throughput" in result:
        out["ray_2_vs_1"] = result["throughput"]["ray_2_vs_1"]
        out["ray_1_vs_plain"] = result["throughput"]["ray_1_vs_plain"]
    if "throughput_haproxy" in result:
        out["haproxy_2_vs_1"] = result["throughput_haproxy"]["ray_2_vs_1"]
        out["haproxy_1_vs_plain"] = result["throughput_haproxy"]["ray_1_vs_plain"]
    return out
