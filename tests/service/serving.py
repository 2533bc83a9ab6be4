"""Helpers for the service tests: a real store on the tiny T5 and a real uvicorn server on
127.0.0.1 (in a thread, ephemeral port)."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import httpx
import torch
import uvicorn

from prompts_store import DirectoryStore, Family, Task

L = 4


def make_store(root: Path, fingerprint: dict, d: int, tasks: int = 4, seed: int = 0) -> DirectoryStore:
    """A store with family 'fam' (l=4) and tasks t0..t{n-1} with random factors (ranks 1 and 2)."""
    g = torch.Generator().manual_seed(seed)
    store = DirectoryStore(root)
    store.put_family(Family("fam", torch.randn(L, d, generator=g), fingerprint))
    for k in range(tasks):
        r = 1 + k % 2
        store.put_task(Task(f"t{k}", "fam", torch.randn(L, r, generator=g) * 2, torch.randn(d, r, generator=g)))
    return store


def factors_json(name: str, d: int, seed: int, family: str = "fam", l: int = L) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "name": name,
        "family": family,
        "u": (torch.randn(l, generator=g) * 2).tolist(),
        "v": torch.randn(d, generator=g).tolist(),
    }


@contextlib.contextmanager
def serve(model: Path, store: Path, **overrides):
    """Run the real app under uvicorn on 127.0.0.1; yields (base_url, app) once ready."""
    from service.app import create_app
    from service.settings import Settings

    settings = Settings(**({"model": str(model), "store": str(store), "port": 0, "store_poll_s": 0.2} | overrides))
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        while httpx.get(f"{url}/health/ready").status_code != 200:
            if time.monotonic() > deadline or app.state.service.phase == "failed":
                raise RuntimeError(f"server not ready: {app.state.service.failure}")
            time.sleep(0.05)
        yield url, app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def metric(url: str, name: str) -> float:
    """Sum of a Prometheus metric's samples (all labels)."""
    total = 0.0
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total
