"""The record of a ``bench.speed`` run: environment, JSON file, and the markdown table for the README."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def environment(device: torch.device, threads: int) -> dict:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "device": device.type,
        "device_name": name,
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "load_before": os.getloadavg(),
        "versions": {m: _version(m) for m in ("torch", "transformers", "peft")},
        "python": platform.python_version(),
    }


def write_json(result: dict, out: str, device: str, quick: bool) -> Path:
    path = Path(out) / f"speed-{device}{'-quick' if quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def markdown_table(result: dict) -> str:
    f, s = result["figures"], result["shape"]
    B = s["batch"]
    gen, sc = f[f"generate_b{B}"], f[f"score_b{B}"]
    lg, ls, ten = f["latency_b1_generate"], f["latency_b1_score"], f["tenancy_1000"]
    label = f"{s['candidates']} candidates" + (" (1 decoder step)" if s["candidate_tokens"] == 1 else "")
    cpu = result["device"] == "cpu"

    def row(name, fig, engine, peft, fmt):
        by_cpu = [fmt.format(fig["ratio_cpu_time"])] if cpu else []
        return (name, engine, peft, fmt.format(fig["ratio"]), *by_cpu)

    rows = [
        ("figure", "engine", "PEFT", "engine / PEFT", *(["same, by CPU time"] if cpu else [])),
        ("---", "---:", "---:", "---:", *(["---:"] if cpu else [])),
        row(f"generate {s['new_tokens']} tokens, batch {B} (req/s)", gen, f"{gen['engine_rps']:.1f}",
            f"{gen['peft_rps']:.1f}", "{:.2f}x"),
        row(f"score {label}, batch {B} (req/s)", sc, f"{sc['engine_rps']:.1f}", f"{sc['peft_rps']:.1f}", "{:.2f}x"),
        row("batch-1 latency, generate (p50 ms)", lg, f"{lg['engine_p50_ms']:.1f}", f"{lg['peft_p50_ms']:.1f}",
            "{:.2f}"),
        row(f"batch-1 latency, score {label} (p50 ms)", ls, f"{ls['engine_p50_ms']:.1f}", f"{ls['peft_p50_ms']:.1f}",
            "{:.2f}"),
        (f"{ten['distinct_tasks_in_batch']} distinct of 1,000 tasks per batch vs 1 task (req/s)",
         f"{ten['mixed_rps']:.1f}", f"{ten['single_rps']:.1f} (1 task)", f"{ten['ratio']:.3f}",
         *([f"{ten['times']['single']['cpu_median_s'] / ten['times']['mixed']['cpu_median_s']:.3f}"] if cpu else [])),
    ]  # fmt: skip
    head = (
        f"{result['device_name']} ({result['device']}, {result.get('threads') or '-'} threads), torch "
        f"{result['versions']['torch']}, transformers {result['versions']['transformers']}, peft "
        f"{result['versions']['peft']}; d={s['d_model']} x {s['layers']} layers, l={s['prompt_len']}, "
        f"inputs ~{s['input_len']} tokens, {s['dtype']}; load average before/after "
        f"{result['load_before'][0]:.2f}/{result.get('load_after', [float('nan')])[0]:.2f}"
    )
    if not result.get("fast_path_active", True):
        head += "\n\n**The fast path failed its check against the reference path: engine = reference path.**"
    return head + "\n\n" + "\n".join("| " + " | ".join(r) + " |" for r in rows)
