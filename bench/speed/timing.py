"""Interleaved timing for ``bench.speed``: the compared cases run in turn, repeat after repeat,
so that a load change on a shared machine hits all of them alike; medians are reported, with
wall-clock and process CPU time (the latter is less sensitive to other jobs on the cores)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def interleaved(
    cases: dict[str, Callable[[], object]],
    repeats: int,
    cap_s: float,
    sync: Callable[[], None],
    min_repeats: int = 3,
) -> dict[str, dict]:
    """Run every case once untimed, then ``repeats`` rounds (fewer once ``cap_s`` is spent, but at
    least ``min_repeats``). Returns per case: wall/cpu seconds of every repeat and their medians."""
    for fn in cases.values():
        fn()
    sync()
    times = {name: {"wall": [], "cpu": []} for name in cases}
    start = time.perf_counter()
    order = list(cases.items())
    for r in range(repeats):
        for name, fn in order if r % 2 == 0 else order[::-1]:  # alternate who runs first each round
            sync()
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            sync()
            times[name]["wall"].append(time.perf_counter() - w0)
            times[name]["cpu"].append(time.process_time() - c0)
        if r + 1 >= min_repeats and time.perf_counter() - start > cap_s:
            break
    for t in times.values():
        t["wall_median_s"] = statistics.median(t["wall"])
        t["cpu_median_s"] = statistics.median(t["cpu"])
        t["repeats"] = len(t["wall"])
        t["wall"] = [round(x, 5) for x in t["wall"]]
        t["cpu"] = [round(x, 5) for x in t["cpu"]]
    return times
