"""Engine speed vs PEFT, side by side in one process (not a unit test).

The serving engine's fast path (``service.fast.FastT5``, driven through the same surface the
engine calls) and PEFT's ``MultitaskPromptTuning`` (``num_transformer_submodules=1``) run on ONE
random-weights T5, the same P*, u, v and the same inputs; their outputs are compared in the same
run; the cases are interleaved and medians reported.

    python -m bench.speed --device cpu     # T5-small shape, fp32, batch 32 -> bench/results/speed-cpu.json
    python -m bench.speed --device cuda    # T5-base shape, bf16, batch 256 -> bench/results/speed-cuda.json
    python -m bench.speed --device cpu --quick   # a tiny end-to-end dry run

CPU workloads: greedy generation of 4 tokens and scoring of 2 candidates (labels of 1-2 tokens +
EOS; PEFT scores a candidate with one forward per (input, candidate) pair, as its API does)
at batch 32 of 8 mixed tasks; batch-1 latency (p50 of repeated single requests). GPU: label
scoring (one decoder step: each input's candidates are single tokens; PEFT runs one forward per
input) and generation at batch 256, batch-1 label scoring. Both: 1,000 tasks resident, every row
of a batch a distinct task, vs every row the same task.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # be gentle on a shared CPU; before torch loads
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import sys
import time
from pathlib import Path

import torch

from .speed_report import environment, markdown_table, write_json
from .speed_setup import CPU_SHAPE, GPU_SHAPE, QUICK_SHAPE, build_model, build_peft, build_tables, build_workload
from .speed_timing import interleaved, synchronizer

T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} +{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--quick", action="store_true", help="a tiny model and few repeats: proves the run end to end")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per phase (default 7; quick 2)")
    p.add_argument("--latency-repeats", type=int, default=None, help="single requests per latency figure")
    p.add_argument("--phase-cap", type=float, default=None, help="seconds after which a phase stops repeating")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads on cpu (both sides)")
    p.add_argument("--compile", default="auto", help="FastOptions.compile: auto, off, default, ...")
    p.add_argument("--attention", default="auto", help="FastOptions.attention: auto, eager, sdpa")
    p.add_argument("--cross", default="auto", help="FastOptions.cross: auto, cached, absorbed")
    p.add_argument("--static-shapes", default="auto", help="FastOptions.static_shapes: auto, on, off")
    p.add_argument("--compile-min-batch", type=int, default=16, help="FastOptions.compile_min_batch")
    p.add_argument("--compile-budget", type=float, default=150.0, help="seconds warm-up may spend compiling")
    p.add_argument("--deadline", type=float, default=None, help="seconds for the whole run (cuda default 420)")
    p.add_argument("--out", default=os.environ.get("OUT") or "bench/results", help="directory of the JSON")
    return p.parse_args(argv)


class Sides:
    """The two compared implementations over one model, tables and workload."""

    def __init__(self, fast, peft, tables, shape):
        self.fast, self.peft, self.tables, self.shape = fast, peft, tables, shape

    # -- the engine: compose (one gather + multiply), encode, then generate or score -------------
    def engine_generate(self, wl, fast=None):
        fast = fast or self.fast
        state = fast.encode(self.tables.compose(wl.task_ids), wl.ids, wl.mask)
        return fast.generate(state, self.shape.new_tokens)

    def engine_score(self, wl, fast=None):
        fast = fast or self.fast
        state = fast.encode(self.tables.compose(wl.task_ids), wl.ids, wl.mask)
        return fast.score(state, wl.pair_rows, wl.cand_ids, wl.cand_mask)

    # -- PEFT: its generate, and its forward with labels ------------------------------------------
    @torch.inference_mode()
    def peft_generate(self, wl):
        out = self.peft.generate(
            input_ids=wl.ids, attention_mask=wl.mask, task_ids=wl.task_ids,
            max_new_tokens=self.shape.new_tokens, do_sample=False, num_beams=1,
        )  # fmt: skip
        return out[:, 1:]  # drop the decoder start token

    @torch.inference_mode()
    def peft_score(self, wl):
        if wl.cand_ids.shape[1] == 1:  # label scoring: one forward per input, one decoder step
            labels = wl.cand_ids.new_full((wl.ids.shape[0], 1), 3)  # only the decoder input (start) matters
            out = self.peft(input_ids=wl.ids, attention_mask=wl.mask, labels=labels, task_ids=wl.task_ids)
            logp = out.logits[:, 0].float().log_softmax(-1)  # (B, V)
            return logp[wl.pair_rows, wl.cand_ids[:, 0]]
        r = wl.pair_rows  # one forward per (input, candidate) pair
        labels = wl.cand_ids.masked_fill(wl.cand_mask == 0, -100)
        out = self.peft(input_ids=wl.ids[r], attention_mask=wl.mask[r], labels=labels, task_ids=wl.task_ids[r])
        logp = out.logits.float().log_softmax(-1)
        tok = logp.gather(-1, wl.cand_ids.unsqueeze(-1)).squeeze(-1)
        return (tok * wl.cand_mask).sum(-1)


def compare_generate(ours: torch.Tensor, theirs: torch.Tensor, pad: int) -> dict:
    width = max(ours.shape[1], theirs.shape[1])
    a = torch.nn.functional.pad(ours, (0, width - ours.shape[1]), value=pad)
    b = torch.nn.functional.pad(theirs, (0, width - theirs.shape[1]), value=pad)
    equal = (a == b).all(dim=1)
    return {"rows": len(equal), "rows_equal": int(equal.sum()), "identical": bool(equal.all())}


def compare_score(ours: torch.Tensor, theirs: torch.Tensor, wl) -> dict:
    rows = int(wl.pair_rows.max()) + 1
    C = len(ours) // rows
    chosen = ours.view(rows, C).argmax(1) == theirs.view(rows, C).argmax(1)
    diff = (ours.float() - theirs.float()).abs().max().item()
    return {"rows": rows, "chosen_equal": int(chosen.sum()), "identical_choices": bool(chosen.all()),
            "max_abs_diff": diff}  # fmt: skip


def throughput(t: dict, batch: int) -> float:
    return batch / t["wall_median_s"]


class Run:
    """The record being built: written after every phase, so a run cut short still leaves its figures."""

    def __init__(self, args, result: dict, deadline: float):
        self.args, self.result, self.deadline = args, result, deadline

    def left(self) -> float:
        return self.deadline - (time.perf_counter() - T0)

    def save(self) -> Path:
        self.result["load_after"] = os.getloadavg()
        return write_json(self.result, self.args.out, self.args.device, self.args.quick)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    from service.fast import FastOptions, FastT5

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU visible")
    cuda = device.type == "cuda"
    if not cuda:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if cuda else torch.float32
    shape = QUICK_SHAPE if args.quick else (GPU_SHAPE if cuda else CPU_SHAPE)
    repeats = args.repeats or (2 if args.quick else (15 if cuda else 7))
    lat_repeats = args.latency_repeats or (5 if args.quick else (51 if cuda else 21))
    cap = args.phase_cap or (20.0 if args.quick else (30.0 if cuda else 120.0))
    sync = synchronizer(device)
    result = {"command": " ".join(["python", "-m", "bench.speed", *(sys.argv[1:] if argv is None else argv)])}
    result.update(environment(device, args.threads))
    result["shape"] = shape.as_dict() | {"dtype": str(dtype).removeprefix("torch.")}
    run = Run(args, result, args.deadline or (420.0 if cuda else 3600.0))
    say(f"building the model ({shape.d_model}d x {shape.layers} layers) on {device}, {dtype}")
    model = build_model(shape, device, dtype)
    result["peft_attention"] = getattr(model.config, "_attn_implementation", None)
    tables = build_tables(shape, shape.tasks_in_batch, device)
    peft = build_peft(model, tables)
    options = FastOptions(compile=args.compile, attention=args.attention, cross=args.cross,
                          static_shapes=args.static_shapes, compile_min_batch=args.compile_min_batch,
                          max_compile_s=args.compile_budget)  # fmt: skip
    fast = FastT5(model, options)
    result["options"] = {k: str(v) for k, v in vars(fast.options).items()}
    wl = build_workload(shape, shape.tasks_in_batch, shape.batch, device)
    say(f"fast path: {fast.options}; warming up (compile budget {args.compile_budget:.0f}s)")
    result["warm_up"] = fast.warm_up(
        batches=[shape.batch, 1], input_lens=[wl.ids.shape[1]], prompt_len=shape.prompt_len,
        steps=[shape.new_tokens], candidates=[(shape.candidates, shape.candidate_tokens)],
    )  # fmt: skip
    say(f"warm-up: {result['warm_up']}")
    result["fast_path_active"] = not fast.use_reference  # False: verify failed, the figures are the reference path's
    if fast.use_reference:
        say("WARNING: the fast path disagreed with the reference path; the engine figures are the reference path's")
    sides = Sides(fast, peft, tables, shape)
    figures, checks = result.setdefault("figures", {}), result.setdefault("checks", {})

    say("checking outputs (engine vs PEFT, same inputs)")
    checks["generate"] = compare_generate(sides.engine_generate(wl), sides.peft_generate(wl), 0)
    checks["score"] = compare_score(sides.engine_score(wl), sides.peft_score(wl), wl)
    say(f"checks: {checks}")
    run.save()

    B = shape.batch
    for phase, eng, ref in [
        ("score", sides.engine_score, sides.peft_score),
        ("generate", sides.engine_generate, sides.peft_generate),
    ]:
        say(f"timing {phase} at batch {B}")
        t = interleaved(
            {"engine": lambda e=eng: e(wl), "peft": lambda r=ref: r(wl)}, repeats, min(cap, run.left() / 6), sync
        )
        figures[f"{phase}_b{B}"] = {
            "engine_rps": throughput(t["engine"], B), "peft_rps": throughput(t["peft"], B),
            "ratio": t["peft"]["wall_median_s"] / t["engine"]["wall_median_s"],
            "ratio_cpu_time": t["peft"]["cpu_median_s"] / t["engine"]["cpu_median_s"], "times": t,
        }  # fmt: skip
        fig = figures[f"{phase}_b{B}"]
        say(f"{phase}_b{B}: engine {fig['engine_rps']:.1f} req/s, PEFT {fig['peft_rps']:.1f}, {fig['ratio']:.2f}x")
        run.save()

    one = wl.row(0)
    for phase, eng, ref in [
        ("latency_b1_score", sides.engine_score, sides.peft_score),
        ("latency_b1_generate", sides.engine_generate, sides.peft_generate),
    ]:
        say(f"timing {phase}")
        t = interleaved(
            {"engine": lambda e=eng: e(one), "peft": lambda r=ref: r(one)}, lat_repeats, min(cap, run.left() / 5), sync
        )
        figures[phase] = {
            "engine_p50_ms": 1e3 * t["engine"]["wall_median_s"], "peft_p50_ms": 1e3 * t["peft"]["wall_median_s"],
            "ratio": t["engine"]["wall_median_s"] / t["peft"]["wall_median_s"],
            "ratio_cpu_time": t["engine"]["cpu_median_s"] / t["peft"]["cpu_median_s"], "times": t,
        }  # fmt: skip
        say(f"{phase}: engine {figures[phase]['engine_p50_ms']:.2f} ms, PEFT {figures[phase]['peft_p50_ms']:.2f} ms")
        run.save()

    say("timing 1,000 resident tasks: every row a distinct task vs every row the same task")
    many = build_tables(shape, 1000, device, seed=3)
    mixed, single = build_workload(shape, 1000, B, device), build_workload(shape, 1, B, device)
    wide = Sides(fast, None, many, shape)
    t = interleaved({"mixed": lambda: wide.engine_score(mixed), "single": lambda: wide.engine_score(single)},
                    repeats, min(cap, run.left() / 4), sync)  # fmt: skip
    figures["tenancy_1000"] = {
        "distinct_tasks_in_batch": int(mixed.task_ids.unique().numel()),
        "mixed_rps": throughput(t["mixed"], B), "single_rps": throughput(t["single"], B),
        "ratio": t["single"]["wall_median_s"] / t["mixed"]["wall_median_s"], "times": t,
    }  # fmt: skip
    run.save()

    if fast.prepared is not None and run.left() > 60:  # what compile + graphs add: the same fast path, eager
        say(f"timing the fast path without compile / CUDA graphs (score at batch {B})")
        plain = FastT5(model, FastOptions(compile="off", cuda_graphs=False, attention=args.attention, cross=args.cross))
        t = interleaved({"eager": lambda: sides.engine_score(wl, plain), "engine": lambda: sides.engine_score(wl)},
                        repeats, min(cap, run.left() / 3), sync)  # fmt: skip
        figures[f"score_b{B}_eager_fast_path"] = {"rps": throughput(t["eager"], B), "times": t}
        run.save()

    if cuda:
        ratios = {
            "score_b256": figures[f"score_b{B}"]["ratio"],
            "generate_b256": figures[f"generate_b{B}"]["ratio"],
            "score_b1_p50_ms": figures["latency_b1_score"]["engine_p50_ms"],
        }
    else:
        ratios = {
            "generate_b32": figures[f"generate_b{B}"]["ratio"],
            "score_b32": figures[f"score_b{B}"]["ratio"],
            "latency_b1": figures["latency_b1_generate"]["ratio"],
        }
    ratios["tenancy_1000"] = figures["tenancy_1000"]["ratio"]
    result["ratios"] = ratios
    if not cuda:  # the same ratios from process CPU time: steadier than wall time on a shared machine
        result["ratios_cpu_time"] = {
            "generate_b32": figures[f"generate_b{B}"]["ratio_cpu_time"],
            "score_b32": figures[f"score_b{B}"]["ratio_cpu_time"],
            "latency_b1": figures["latency_b1_generate"]["ratio_cpu_time"],
        }
    path = run.save()
    print(markdown_table(result))
    say(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
