"""The HTTP phase of ``bench.speed``: the real server (``python -m service``) in a subprocess, over the
benchmark's saved backbone and a directory store holding its family and tasks, driven by
``bench.http_load``'s closed loop (one input per request, label scoring of 2 candidates), compared
with the engine's own throughput on the same requests' rows (``Engine.run`` at the full batch, in
this process, measured before the server starts so the two never share the device).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mpt_core import Family, Task
from prompts_store import DirectoryStore
from service.inference.rows import Candidates, Row

from ..http_load import closed_loop, post_json
from .engine import settings_env
from .model import text_of


def write_store(root: Path, fingerprint: dict, tables, family: str = "fam") -> Path:
    store = DirectoryStore(root)
    store.put_family(Family(family, tables.shared[0].cpu(), fingerprint))
    for k in range(tables.u.shape[0]):
        store.put_task(Task(f"{family}-{k}", family, tables.u[k].cpu(), tables.v[k].cpu()))
    return root


def requests_of(wl, family: str) -> list[dict]:
    """One request per workload row: its input text, its task, 2 label words as candidates."""
    ids, lengths, tasks = wl.ids.cpu(), wl.mask.sum(1).tolist(), wl.task_ids.tolist()
    out = []
    for i, n in enumerate(lengths):
        words = ids[i, : n - 1].tolist()  # drop EOS: the tokenizer appends it
        labels = [f"w{3 + (7 * i + j) % 997}" for j in range(2)]
        out.append({"task": f"{family}-{tasks[i]}", "inputs": text_of(words), "candidates": labels})
    return out


def engine_rows(engine, requests: list[dict]) -> list[Row]:
    """What the request path makes of ``requests`` (tokenized by the engine's own tokenizer)."""
    rows = []
    for r in requests:
        ids = engine.tokenize([r["inputs"]])[0]
        rows.append(Row(r["task"], ids, candidates=Candidates(r["candidates"], engine.tokenize(r["candidates"]))))
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health/ready", timeout=2) as r:
        return r.status == 200
    return False


@contextlib.contextmanager
def running_server(model_dir: Path, store: Path, env: dict[str, str], log_path: Path, ready_within: float, say):
    """``python -m service`` on 127.0.0.1 until the block ends; yields (url, seconds to ready, pid)."""
    port = _free_port()
    full = dict(os.environ, MPT_MODEL=str(model_dir), MPT_STORE=str(store), MPT_HOST="127.0.0.1",
                MPT_PORT=str(port), MPT_LOG_LEVEL="warning", **env)  # fmt: skip
    log = open(log_path, "w")  # noqa: SIM115 (closed below, after the process)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "service"], env=full, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while not _ready(url):
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {proc.returncode}: see {log_path}")
            if time.perf_counter() - t0 > ready_within:
                raise TimeoutError(f"the server was not ready within {ready_within:.0f}s: see {log_path}")
            time.sleep(0.25)
        took = time.perf_counter() - t0
        say(f"server ready in {took:.1f}s")
        yield url, took, proc.pid
    finally:  # SIGTERM (drain, exit); killed if that takes over 30 s or this wait is interrupted
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            log.close()


def process_cpu(pid: int) -> tuple[float, float] | None:
    """CPU seconds so far of the whole process and of its main thread (the server's event loop),
    from /proc; None where there is no /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def read(path: str) -> float:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime + stime

    try:
        return read(f"/proc/{pid}/stat"), read(f"/proc/{pid}/task/{pid}/stat")
    except OSError:
        return None


def server_metrics(url: str) -> dict[str, float]:
    """The server's batch figures so far (its Prometheus metrics)."""
    names = ("mpt_batch_rows_sum", "mpt_batch_rows_count", "mpt_inference_seconds_sum")
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        lines = r.read().decode().splitlines()
    return {line.split(" ")[0]: float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(names)}


def where_time_went(before: tuple, after: tuple, result: dict) -> dict:
    """Per request: the server's CPU (all threads, and its event loop's thread alone); per batch:
    rows, and the share of the wall time the batch worker was running batches."""
    (cpu0, m0), (cpu1, m1) = before, after
    n = max(1, result["requests"] + result["errors"])
    batches = m1["mpt_batch_rows_count"] - m0["mpt_batch_rows_count"]
    out = {
        "batches": int(batches),
        "mean_batch_rows": round((m1["mpt_batch_rows_sum"] - m0["mpt_batch_rows_sum"]) / max(1, batches), 1),
        "engine_busy": round(
            (m1["mpt_inference_seconds_sum"] - m0["mpt_inference_seconds_sum"]) / result["seconds"], 3
        ),
    }
    if cpu0 is not None and cpu1 is not None:
        out["cpu_ms_per_request"] = round(1e3 * (cpu1[0] - cpu0[0]) / n, 4)
        out["event_loop_cpu_ms_per_request"] = round(1e3 * (cpu1[1] - cpu0[1]) / n, 4)
    return out


def drive(url: str, requests: list[dict], concurrency: int, seconds: float) -> dict:
    host = url.split("//", 1)[1]
    payloads = [
        post_json(host, "/predict", {"task": r["task"]}, {"inputs": [r["inputs"]], "candidates": r["candidates"]})
        for r in requests
    ]
    n = len(payloads)
    result = asyncio.run(closed_loop(url, concurrency, seconds, lambda w, k: payloads[(w + k * concurrency) % n]))
    return result.summary()


def _post(url: str, request: dict) -> dict:
    body = json.dumps({"inputs": [request["inputs"]], "candidates": request["candidates"]}).encode()
    req = urllib.request.Request(f"{url}/predict?task={request['task']}", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def http_phase(run, engine, backbone, tables, wl, settings, args, tmp: Path, say, repeats: int, cap: float, sync):
    """The engine's throughput on the requests' rows, then the server's over HTTP; figures["http"]."""
    from .timing import interleaved

    figures, checks = run.result["figures"], run.result["checks"]
    B = len(wl.task_ids)
    conc = args.concurrency or B
    seconds = args.http_seconds or (3.0 if args.quick else (15.0 if args.device == "cuda" else 20.0))
    requests = requests_of(wl, "fam")
    rows = engine_rows(engine, requests)
    t = interleaved({"engine": lambda: engine.run(rows)}, repeats, cap, sync)
    engine_rps = B / t["engine"]["wall_median_s"]
    expected = engine.run(rows[:1])[0]
    say(f"engine on the HTTP requests' rows at batch {B}: {engine_rps:.1f} req/s")
    store = write_store(tmp / "store", backbone.fingerprint, tables, "fam")
    dtype = str(engine.dtype).removeprefix("torch.")
    env = settings_env(settings) | {
        "MPT_DEVICE": str(engine.device), "MPT_DTYPE": dtype, "MPT_MAX_QUEUE": str(max(1024, 4 * conc)),
        "MPT_ATTN_IMPLEMENTATION": args.peft_attention,
        # the batcher's padded-token budget per batch (where the server has one): a full batch fits
        "MPT_MAX_BATCH_TOKENS": str(B * (len(rows[0].input_ids) + 8)),
    }  # fmt: skip
    log_path = Path(args.out) / f"speed-{args.device}{'-quick' if args.quick else ''}-server.log"
    ready_within = max(10.0, min(240.0, run.left() - seconds - 25))
    with running_server(tmp / "model", store, env, log_path, ready_within, say) as (url, ready_s, pid):
        answer = _post(url, requests[0])  # the server's answer is the engine's
        checks["http"] = {
            "output_equal": answer["outputs"][0] == expected.output,
            "max_abs_diff": max(abs(a - b) for a, b in zip(answer["scores"][0], expected.scores)),
        }
        say(f"HTTP check: {checks['http']}; warming up the connections, then {seconds:.0f}s at concurrency {conc}")
        drive(url, requests, conc, min(3.0, seconds / 3))
        before = process_cpu(pid), server_metrics(url)
        res = drive(url, requests, conc, seconds)
        server = where_time_went(before, (process_cpu(pid), server_metrics(url)), res)
    figures["http"] = res | {
        "server": server,
        "concurrency": conc, "engine_rps": engine_rps, "ratio": res["rps"] / engine_rps,
        "server_ready_s": round(ready_s, 1), "server_log": str(log_path), "engine_times": t["engine"],
        "request": f"1 input of {len(rows[0].input_ids)} tokens, 2 candidates (1 word + EOS each)",
    }  # fmt: skip
    say(f"HTTP: {res['rps']:.1f} req/s ({res['errors']} errors, p50 {res['p50_ms']} ms) = "
        f"{figures['http']['ratio']:.2f} of the engine's {engine_rps:.1f}; server: {server}")  # fmt: skip
