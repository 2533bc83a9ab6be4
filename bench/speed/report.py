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
    """The README table: one line per figure measured (a phase skipped or failed has no line)."""
    f, s = result.get("figures", {}), result["shape"]
    B = s["batch"]
    label = f"{s['candidates']} candidates" + (" (1 decoder step)" if s["candidate_tokens"] == 1 else "")
    cpu = result["device"] == "cpu"

    def row(name, fig, engine, peft, ratio):
        by_cpu = [f"{fig['ratio_cpu_time']:.2f}" + ("x" if "x" in ratio else "")] if cpu else []
        return (name, engine, peft, ratio, *by_cpu)

    rows = [
        ("figure", "engine", "PEFT", "engine / PEFT", *(["same, by CPU time"] if cpu else [])),
        ("---", "---:", "---:", "---:", *(["---:"] if cpu else [])),
    ]
    if (gen := f.get(f"generate_b{B}")) is not None:
        rows.append(row(f"generate {s['new_tokens']} tokens, batch {B} (req/s)", gen, f"{gen['engine_rps']:.1f}",
                        f"{gen['peft_rps']:.1f}", f"{gen['ratio']:.2f}x"))  # fmt: skip
    if (sc := f.get(f"score_b{B}")) is not None:
        rows.append(row(f"score {label}, batch {B} (req/s)", sc, f"{sc['engine_rps']:.1f}", f"{sc['peft_rps']:.1f}",
                        f"{sc['ratio']:.2f}x"))  # fmt: skip
    for key, what in (("latency_b1_generate", "generate"), ("latency_b1_score", f"score {label}")):
        if (lat := f.get(key)) is not None:
            rows.append(row(f"batch-1 latency, {what} (p50 ms)", lat, f"{lat['engine_p50_ms']:.1f}",
                            f"{lat['peft_p50_ms']:.1f}", f"{lat['ratio']:.2f}"))  # fmt: skip
    if (ten := f.get("tenancy_1000")) is not None:
        by_cpu = (
            [f"{ten['times']['single']['cpu_median_s'] / ten['times']['mixed']['cpu_median_s']:.3f}"] if cpu else []
        )
        name = f"{ten['distinct_tasks_in_batch']} distinct of 1,000 tasks per batch vs 1 task (req/s)"
        rows.append((name, f"{ten['mixed_rps']:.1f}", f"{ten['single_rps']:.1f} (1 task)", f"{ten['ratio']:.3f}",
                     *by_cpu))  # fmt: skip
    if (http := f.get("http")) is not None:
        rows.append((f"HTTP, concurrency {http['concurrency']}, score 2 candidates (req/s)", f"{http['rps']:.1f}",
                     f"{http['engine_rps']:.1f} (engine)", f"{http['ratio']:.2f} of the engine",
                     *(["-"] if cpu else [])))  # fmt: skip
    if (eager := f.get(f"score_b{B}_eager_fast_path")) is not None:
        rows.append((f"score, batch {B}: fast path without compile / CUDA graphs (req/s)", f"{eager['rps']:.1f}",
                     f"{eager['engine_rps']:.1f} (with)", "-", *(["-"] if cpu else [])))  # fmt: skip
    head = (
        f"{result['device_name']} ({result['device']}, {result.get('threads') or '-'} threads), torch "
        f"{result['versions']['torch']}, transformers {result['versions']['transformers']}, peft "
        f"{result['versions']['peft']}; d={s['d_model']} x {s['layers']} layers, l={s['prompt_len']}, "
        f"inputs ~{s['input_len']} tokens, {s['dtype']}; load average before/after "
        f"{result['load_before'][0]:.2f}/{result.get('load_after', [float('nan')])[0]:.2f}"
    )
    if not result.get("fast_path_active", True):
        head += "\n\n**The fast path failed its check against the reference path: engine = reference path.**"
    problems = {k: v["status"] for k, v in result.get("phases", {}).items() if v.get("status") != "ok"}
    tail = "".join(f"\n\n{k}: {v}" for k, v in problems.items())
    return head + "\n\n" + "\n".join("| " + " | ".join(r) + " |" for r in rows) + tail
