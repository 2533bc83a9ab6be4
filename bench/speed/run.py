"""Engine speed vs PEFT, side by side in one process (not a unit test).

The serving engine (``service.inference.engine.Engine.run`` on ``Row`` objects: the code the server's batch
worker runs, fast path included) and PEFT's ``MultitaskPromptTuning`` (``num_transformer_submodules=1``)
run on ONE random-weights T5, saved and loaded back through the server's loader, with the same P*,
u, v and the same inputs; their final answers are compared in the same run; the cases are
interleaved and medians reported.

    python -m bench.speed --device cpu     # T5-small shape, fp32, batch 32 -> bench/results/speed-cpu.json
    python -m bench.speed --device cuda    # T5-base shape, bf16, batch 256 -> bench/results/speed-cuda.json
    python -m bench.speed --device cpu --quick --http   # a tiny end-to-end dry run, HTTP phase included

CPU workloads: greedy generation of 4 tokens and scoring of 2 candidates (labels of 1-2 tokens +
EOS; PEFT scores a candidate with one forward per (input, candidate) pair, as its API does) at
batch 32 of 8 mixed tasks; batch-1 latency (p50 of repeated single requests). GPU: label scoring
(one decoder step: each input's candidates are single tokens; PEFT runs one forward per input) and
generation at batch 256, batch-1 label scoring. Both: 1,000 tasks resident, every row of a batch a
distinct task, vs every row the same task. With --http (default on cuda): the real server over
HTTP at the batch's concurrency vs the engine's own throughput on the same requests.

Every phase has a time cap and the whole run a deadline; the JSON is rewritten after every phase,
so a run cut short keeps what it measured; a phase that fails is recorded and the run goes on.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # be gentle on a shared CPU; before torch loads
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

import torch

from ..tables import write_beside
from ..tables.speed import table as markdown_table
from .engine import Peft, build_table, compare_generate, compare_score, engine_settings, rows_of, settings_env
from .report import environment, write_json
from .setup import SHAPES, build_model, build_peft, build_tables, build_workload
from .timing import interleaved, synchronizer

T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} +{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--quick", action="store_true", help="a tiny model and few repeats: proves the run end to end")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto", help="auto: cuda bf16, cpu fp32")
    p.add_argument("--shape", choices=sorted(SHAPES), default=None, help="default: quick, else gpu on cuda, cpu on cpu")
    p.add_argument("--batch", type=int, default=None, help="the shape's batch (and the server's max batch) instead")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per phase (default cpu 7, cuda 15, quick 2)")
    p.add_argument("--latency-repeats", type=int, default=None, help="single requests per latency figure")
    p.add_argument("--phase-cap", type=float, default=None, help="seconds after which a phase stops repeating")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads on cpu (both sides)")
    p.add_argument("--compile", default="auto", help="MPT_FAST_COMPILE: auto, off, default, max-autotune, ...")
    p.add_argument("--attention", default="auto", help="MPT_FAST_ATTENTION: auto, eager, sdpa")
    p.add_argument("--cross", default="auto", help="MPT_FAST_CROSS: auto, cached, absorbed")
    p.add_argument("--compile-min-batch", type=int, default=None,
                   help="MPT_FAST_COMPILE_MIN_BATCH (cuda: the batch, so one shape compiles; else 16)")  # fmt: skip
    p.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=True, help="MPT_FAST_CUDA_GRAPHS")
    p.add_argument("--compile-budget", type=float, default=None, help="MPT_FAST_COMPILE_BUDGET_S (cuda 90, else 150)")
    p.add_argument("--peft-attention", default="sdpa", help="the backbone's attention kernel (PEFT's side)")
    p.add_argument("--http", action=argparse.BooleanOptionalAction, default=None, help="HTTP phase (default: cuda)")
    p.add_argument("--concurrency", type=int, default=None, help="HTTP clients (default: the batch size)")
    p.add_argument("--http-seconds", type=float, default=None, help="HTTP measurement (cuda 15, quick 3, cpu 20)")
    p.add_argument("--deadline", type=float, default=None, help="seconds for the whole run (cuda 380, cpu 3600)")
    p.add_argument("--out", default=os.environ.get("OUT") or "bench/results", help="directory of the JSON")
    args = p.parse_args(argv)
    cuda = args.device == "cuda"
    args.compile_min_batch = args.compile_min_batch or (SHAPES["gpu"].batch if cuda and not args.quick else 16)
    args.compile_budget = args.compile_budget or (90.0 if cuda else 150.0)
    args.http = cuda if args.http is None else args.http
    return args


class Run:
    """The record being built: phases under time caps, the JSON written after each."""

    def __init__(self, args, result: dict, deadline: float, cuda: bool):
        self.args, self.result, self.deadline, self.cuda = args, result, deadline, cuda
        self.phases = result.setdefault("phases", {})

    def left(self) -> float:
        return self.deadline - (time.perf_counter() - T0)

    def save(self) -> Path:
        self.result["ratios"] = _ratios(self.result.get("figures", {}), self.result["shape"]["batch"], self.cuda)
        if not self.cuda:
            self.result["ratios_cpu_time"] = _ratios(self.result.get("figures", {}), self.result["shape"]["batch"],
                                                     False, "ratio_cpu_time")  # fmt: skip
        self.result["load_after"] = os.getloadavg()
        self.result["elapsed_s"] = round(time.perf_counter() - T0, 1)
        return write_json(self.result, self.args.out, self.args.device, self.args.quick)

    def phase(self, name: str, fn, need_s: float = 0.0) -> None:
        """Run one phase: skipped when less than ``need_s`` is left; a failure is recorded, not raised."""
        if self.left() < need_s:
            self.phases[name] = {"status": f"skipped: {self.left():.0f}s left, needs {need_s:.0f}s"}
            say(f"{name}: skipped ({self.left():.0f}s left)")
            self.save()
            return
        say(f"{name}: start ({self.left():.0f}s left)")
        t0 = time.perf_counter()
        try:
            fn()
            status = "ok"
        except Exception as e:  # the next phases still run; the record says what went wrong
            status = f"failed: {type(e).__name__}: {e}"
            say(f"{name}: FAILED\n{traceback.format_exc()}")
        except KeyboardInterrupt:  # the hard stop (SIGINT): recorded, then the run ends
            self.phases[name] = {"status": "interrupted", "seconds": round(time.perf_counter() - t0, 1)}
            raise
        self.phases[name] = {"status": status, "seconds": round(time.perf_counter() - t0, 1)}
        say(f"{name}: {status} in {self.phases[name]['seconds']}s")
        self.save()


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU visible")
    cuda = device.type == "cuda"
    if not cuda:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if (cuda and args.dtype == "auto") or args.dtype == "bfloat16" else torch.float32
    shape = SHAPES[args.shape or ("quick" if args.quick else "gpu" if cuda else "cpu")]
    shape = replace(shape, batch=args.batch) if args.batch else shape
    result = {"command": " ".join(["python", "-m", "bench.speed", *(sys.argv[1:] if argv is None else argv)])}
    result.update(environment(device, args.threads))
    result["shape"] = shape.as_dict() | {"dtype": str(dtype).removeprefix("torch.")}
    result["engine_driven_by"] = "service.inference.engine.Engine.run on Row objects (the batch worker's call)"
    run = Run(args, result, args.deadline or (380.0 if cuda else 3600.0), cuda)
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        try:
            _phases(run, args, shape, device, dtype, cuda, Path(tmp))
        except KeyboardInterrupt:
            result["interrupted"] = f"SIGINT after {time.perf_counter() - T0:.0f}s"
            say("interrupted: the figures measured so far are kept")
        finally:  # also on SIGINT at the hard stop: what was measured is written and shown
            path = run.save()
            print(markdown_table(result), flush=True)
            say(f"wrote {path} and {write_beside(path)}")
    return result


def _phases(run: Run, args, shape, device, dtype, cuda: bool, tmp: Path) -> None:
    from service.inference.engine import Engine

    from .model import load, save_backbone

    result = run.result
    B = shape.batch
    repeats = args.repeats or (2 if args.quick else (15 if cuda else 7))
    lat_repeats = args.latency_repeats or (5 if args.quick else (51 if cuda else 21))
    cap = args.phase_cap or (10.0 if args.quick else (25.0 if cuda else 120.0))
    sync = synchronizer(device)
    t = time.perf_counter()
    say(f"building the model ({shape.d_model}d x {shape.layers} layers), saving it with a tokenizer, loading it back")
    save_backbone(build_model(shape, device, dtype), shape, tmp / "model")
    backbone = load(tmp / "model", device, dtype, args.peft_attention)
    result["peft_attention"] = getattr(backbone.model.config, "_attn_implementation", None)
    tables = build_tables(shape, shape.tasks_in_batch, device)
    many = build_tables(shape, 1000, device, seed=3)
    table = build_table(backbone, {"fam": tables, "many": many})  # 8 + 1,000 tasks resident
    http_cands = (2, 2)  # what the HTTP phase's requests tokenize to: 2 label words + EOS
    settings = engine_settings(shape, args, cuda, http_cands if args.http else None)
    result["settings"] = settings_env(settings)
    engine = Engine(backbone, table, settings)
    peft = Peft(build_peft(backbone.model, tables), backbone.tokenizer, shape.new_tokens)
    result["setup_s"] = round(time.perf_counter() - t, 1)
    say(f"setup {result['setup_s']}s; engine warm-up (fast path {engine.fast.options if engine.fast else 'off'})")
    engine.warm_up()
    result["warm_up"] = engine.warm_up_report
    result["fast_path_active"] = engine.path == "fast"  # False: the engine figures are the reference path's
    prepared = (engine.warm_up_report.get("prepared") or {}).get("prepared", [])
    say(f"warm-up {engine.warm_up_report['seconds']}s, path {engine.path}, {len(prepared)} shapes prepared")
    if engine.path != "fast":
        say("WARNING: the fast path is not serving; the engine figures are the reference path's")
    run.save()

    wl = build_workload(shape, shape.tasks_in_batch, B, device)
    gen_rows, score_rows = rows_of(wl, "fam", shape.new_tokens), rows_of(wl, "fam", None)
    figures, checks = result.setdefault("figures", {}), result.setdefault("checks", {})

    def check() -> None:
        checks["generate"] = compare_generate(engine.run(gen_rows), peft.generate(wl))
        checks["score"] = compare_score(engine.run(score_rows), peft.score(wl), score_rows)
        say(f"checks: {checks}")

    run.phase("checks", check)

    def batch_phase(name: str, rows, peft_fn) -> None:
        t = interleaved({"engine": lambda: engine.run(rows), "peft": lambda: peft_fn(wl)}, repeats, cap, sync)
        figures[name] = {
            "engine_rps": B / t["engine"]["wall_median_s"], "peft_rps": B / t["peft"]["wall_median_s"],
            "ratio": t["peft"]["wall_median_s"] / t["engine"]["wall_median_s"],
            "ratio_cpu_time": t["peft"]["cpu_median_s"] / t["engine"]["cpu_median_s"], "times": t,
        }  # fmt: skip
        f = figures[name]
        say(f"{name}: engine {f['engine_rps']:.1f} req/s, PEFT {f['peft_rps']:.1f}, {f['ratio']:.2f}x")

    run.phase(f"score_b{B}", lambda: batch_phase(f"score_b{B}", score_rows, peft.score), need_s=5)
    run.phase(f"generate_b{B}", lambda: batch_phase(f"generate_b{B}", gen_rows, peft.generate), need_s=5)

    one = wl.row(0)
    one_score, one_gen = rows_of(one, "fam", None), rows_of(one, "fam", shape.new_tokens)

    def latency_phase(name: str, rows, peft_fn) -> None:
        t = interleaved({"engine": lambda: engine.run(rows), "peft": lambda: peft_fn(one)}, lat_repeats, cap / 2, sync)
        figures[name] = {
            "engine_p50_ms": 1e3 * t["engine"]["wall_median_s"], "peft_p50_ms": 1e3 * t["peft"]["wall_median_s"],
            "ratio": t["engine"]["wall_median_s"] / t["peft"]["wall_median_s"],
            "ratio_cpu_time": t["engine"]["cpu_median_s"] / t["peft"]["cpu_median_s"], "times": t,
        }  # fmt: skip
        f = figures[name]
        say(f"{name}: engine {f['engine_p50_ms']:.2f} ms, PEFT {f['peft_p50_ms']:.2f} ms")

    run.phase("latency_b1_score", lambda: latency_phase("latency_b1_score", one_score, peft.score), need_s=5)
    run.phase("latency_b1_generate", lambda: latency_phase("latency_b1_generate", one_gen, peft.generate), need_s=5)

    def tenancy() -> None:
        mixed = rows_of(build_workload(shape, 1000, B, device), "many", None)
        single = rows_of(build_workload(shape, 1, B, device), "many", None)
        t = interleaved({"mixed": lambda: engine.run(mixed), "single": lambda: engine.run(single)}, repeats, cap, sync)
        figures["tenancy_1000"] = {
            "distinct_tasks_in_batch": len({r.task for r in mixed}), "resident_tasks": len(table),
            "mixed_rps": B / t["mixed"]["wall_median_s"], "single_rps": B / t["single"]["wall_median_s"],
            "ratio": t["single"]["wall_median_s"] / t["mixed"]["wall_median_s"], "times": t,
        }  # fmt: skip
        say(f"tenancy: {figures['tenancy_1000']['ratio']:.3f} (mixed / single throughput)")

    run.phase("tenancy_1000", tenancy, need_s=5)

    if args.http:
        from .http_phase import http_phase

        run.phase(
            "http",
            lambda: http_phase(run, engine, backbone, tables, wl, settings, args, tmp, say, repeats, cap, sync),
            need_s=60,
        )

    if engine.fast is not None and engine.fast.prepared is not None:  # what compile + graphs add, same code eager

        def eager() -> None:
            plain = Engine(
                backbone, table, settings.model_copy(update={"fast_compile": "off", "fast_cuda_graphs": False})
            )
            t = interleaved({"eager": lambda: plain.run(score_rows), "engine": lambda: engine.run(score_rows)},
                            repeats, cap, sync)  # fmt: skip
            figures[f"score_b{B}_eager_fast_path"] = {
                "rps": B / t["eager"]["wall_median_s"], "engine_rps": B / t["engine"]["wall_median_s"], "times": t,
            }  # fmt: skip

        run.phase(f"score_b{B}_eager_fast_path", eager, need_s=15)


def _ratios(figures: dict, B: int, cuda: bool, field: str = "ratio") -> dict:
    """The issue's named ratios from the figures measured so far (by wall or by process CPU time)."""
    want = (
        [("score_b256", f"score_b{B}", field), ("generate_b256", f"generate_b{B}", field),
         ("score_b1_p50_ms", "latency_b1_score", "engine_p50_ms")]
        if cuda else
        [("generate_b32", f"generate_b{B}", field), ("score_b32", f"score_b{B}", field),
         ("latency_b1", "latency_b1_generate", field)]
    )  # fmt: skip
    if field == "ratio":
        want += [("tenancy_1000", "tenancy_1000", "ratio"), ("http_vs_engine", "http", "ratio")]
    return {key: figures[name][f] for key, name, f in want if name in figures}


if __name__ == "__main__":
    main()
