"""Helpers for the training-job tests: a real `mpt worker` process and polling a job over HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "jobs-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def start_worker(model: Path | str, store: str, *flags: str) -> subprocess.Popen:
    """``python -m mpt_cli worker`` on ``store``, polling fast (its log on stdout)."""
    argv = [sys.executable, "-m", "mpt_cli", "worker", "--model", str(model), "--store", store, "--device", "cpu"]
    argv += ["--poll-s", "0.1", "--progress-s", "0.1", *flags]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@contextlib.contextmanager
def worker(model: Path | str, store: str, *flags: str):
    proc = start_worker(model, store, *flags)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> str:
    """Signal the worker, wait for it, return its log."""
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    return out


def wait_job(url: str, job: int, until, timeout: float = 120) -> dict:
    """Poll ``GET /jobs/{job}`` until ``until(info)`` holds; the last info."""
    deadline = time.monotonic() + timeout
    while True:
        info = httpx.get(f"{url}/jobs/{job}").json()
        if until(info):
            return info
        assert time.monotonic() < deadline, f"job {job} never got there: {info}"
        time.sleep(0.05)


def wait_served(url: str, task: str, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while (r := httpx.get(f"{url}/predict", params={"task": task, "input": "x"})).status_code == 404:
        assert time.monotonic() < deadline, f"task {task} never served"
        time.sleep(0.05)
    return r


def examples(task, split: str = "train", n: int = 8) -> list[dict]:
    return [{"input": e.input, "target": e.target} for e in task.split(split)[:n]]
