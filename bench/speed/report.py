"""The record of a ``bench.speed`` run: its environment and its JSON file (the table: ``bench.tables.speed``)."""

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
