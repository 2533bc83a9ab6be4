"""What the training-job benchmarks share: the demo served from a fresh SQLite copy of its store by
a real server process, a real `mpt worker` process beside it (as `make serve` runs them), the
examples of a task family the demo store does not hold (the lab's ``rte``, over the demo world's
vocabulary), CPU time of a process, and the machine's load.

The committed request body of the README (``demo/jobs/rte.json``) is :func:`example_body` with its
defaults; ``tests/bench/test_train_example.py`` checks that it still is.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "demo" / "backbone"
DEMO_STORE = ROOT / "demo" / "store"
EXAMPLE = ROOT / "demo" / "jobs" / "rte.json"
FAMILY = "lab"  # the demo store's family
TASK_FAMILY = "rte"  # a lab family the demo store has no task of: "does the first text entail the second?"


def lab_task(name: str = TASK_FAMILY, seed: int = 0, train: int = 16, test: int = 200):
    """The lab family ``name`` as TaskData: ``train`` examples (drawn with ``seed``) and ``test``
    held-out ones (words and templates no training example of the family uses)."""
    from lab.world.registry import family
    from lab.world.tasks import SplitSizes, task_data
    from lab.world.world import world_for_backbone

    world = world_for_backbone(MODEL, 0)  # the world the demo backbone was pretrained on
    return task_data(family(name), world, SplitSizes(train=train, dev=1, test=test), seed=seed)


def rows(examples) -> list[dict]:
    return [{"input": e.input, "target": e.target} for e in examples]


def example_body(seed: int = 0, examples: int = 16, steps: int = 100) -> dict:
    """The body of ``POST /tasks/NAME/train?family=lab``: ``examples`` rte examples, mode factors."""
    task = lab_task(seed=seed, train=examples, test=1)
    return {"examples": rows(task.train), "mode": "factors", "steps": steps, "seed": seed}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_store(work: Path) -> str:
    """A fresh SQLite copy of the demo store (as `make serve` seeds build/demo-store.db); its URL."""
    from prompts_store import copy_store

    url = f"sqlite:///{work / 'store.db'}"
    copy_store(DEMO_STORE, url, progress=False)
    return url


@contextlib.contextmanager
def server(store: str, **settings):
    """``python -m service`` over ``store`` with the demo backbone; yields (process, url) once ready."""
    port = free_port()
    env = dict(os.environ, MPT_MODEL=str(MODEL), MPT_STORE=store, MPT_PORT=str(port), MPT_LOG_LEVEL="warning")
    env |= {f"MPT_{k.upper()}": str(v) for k, v in settings.items()}
    proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield proc, url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@contextlib.contextmanager
def worker(store: str, *flags: str):
    """``python -m mpt_cli worker`` on ``store`` with the demo backbone (its defaults unless ``flags``)."""
    argv = [sys.executable, "-m", "mpt_cli", "worker", "--model", str(MODEL), "--store", store, *flags]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict:
    """What the figures were measured on, and how busy it was (other jobs share this machine)."""
    import platform

    import torch

    return {
        "cpus": os.cpu_count(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def wait_job(url: str, job: int, timeout: float = 600, poll_s: float = 0.05) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = httpx.get(f"{url}/jobs/{job}", timeout=30).json()
        if info["status"] not in ("queued", "running"):
            return info
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job} did not finish: {info}")
        time.sleep(poll_s)


def write_result(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
