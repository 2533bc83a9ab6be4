"""A real ``python -m service`` subprocess for the tests that need one (signals, kill -9, RSS,
latency away from the test's own GIL): started on a free port, ready before it is handed out."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .serving import store_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(model: Path | str, store: Path | str, **settings) -> tuple[subprocess.Popen, str]:
    """``python -m service`` over ``store`` (a URL, or a Path as in serving.make_store) with
    ``MPT_<NAME>`` for each setting; returns (process, url) once ready."""
    port = free_port()
    store = store_url(store) if isinstance(store, Path) else store
    env = dict(os.environ, MPT_MODEL=str(model), MPT_STORE=store, MPT_LOG_LEVEL="warning")
    env |= {f"MPT_{k.upper()}": str(v) for k, v in settings.items()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {proc.stdout.read()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                return proc, url
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server not ready within 90 s")
        time.sleep(0.1)


@contextlib.contextmanager
def running(model: Path | str, store: Path | str, **settings):
    proc, url = start(model, store, **settings)
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
