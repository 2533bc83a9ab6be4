"""``scale.json`` (``python -m bench.scale``): one server with 1 to 10^6 resident tasks, a row per count."""

from __future__ import annotations

from .markdown import num
from .markdown import table as md_table

SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def count(n: int) -> str:
    """1, 10³, 10⁶ for powers of ten; other counts with separators."""
    text = str(n)
    if n >= 1000 and text.strip("0") == "1":
        return "10" + str(len(text) - 1).translate(SUPERSCRIPT)
    return f"{n:,}"


def _vs_one(row: dict, key: str) -> str:
    ratio = row.get(f"{key}_vs_1")
    return num(row.get(key), ",.0f") + (f" ({ratio:.2f})" if ratio is not None else "")


def table(rows: list[dict]) -> str:
    header = (
        "tasks",
        "ready (bulk load)",
        "RSS / task beyond its factors",
        "upload on a 2nd server → served here, p50 / p99",
        "upload → 201 / → 1st prediction, p99, under load",
        "`GET /tasks?limit=100` p99",
        "generate req/s (vs 1 task)",
        "score req/s (vs 1 task)",
    )
    out = []
    for r in rows:
        cp, same = r["cross_process_ms"], r["same_server_ms"]
        per_task = r.get("rss_per_task_b")
        out.append(
            (
                count(r["tasks"]),
                f"{num(r['ready_s'])} s ({num(r['bulk_load_s'], '.2f')} s)",
                "–" if per_task is None else f"{per_task:,.0f} B",
                f"{cp['p50']:,.0f} / {cp['p99']:,.0f} ms",
                f"{same['put_p99']:,.0f} / {same['p99']:,.0f} ms",
                f"{num(r['list_ms']['p99'])} ms",
                _vs_one(r, "predict_rps"),
                _vs_one(r, "score_rps"),
            )
        )
    first = rows[0]
    caption = (
        f"Each task holds {first['factor_bytes_per_task']} B of factors; `MPT_STORE_POLL_S` = {first['poll_s']:g} s; "
        "RSS per task is noise below 10⁵ tasks (the fixed costs are not yet amortised)."
    )
    return caption + "\n\n" + md_table(header, out, "rllllrrr")


def figures(rows: list[dict]) -> dict:
    """The largest row's figures, by name (``largest_ready_s``, ...)."""
    top = max(rows, key=lambda r: r["tasks"])
    return {
        "largest_tasks": top["tasks"],
        "largest_ready_s": top["ready_s"],
        "largest_rss_per_task_b": top.get("rss_per_task_b"),
        "largest_rss_mb": top["rss_mb"],
        "largest_list_p99_ms": top["list_ms"]["p99"],
        "largest_cross_process_p99_ms": top["cross_process_ms"]["p99"],
        "largest_score_vs_1": top.get("score_rps_vs_1"),
        "largest_predict_vs_1": top.get("predict_rps_vs_1"),
    }
