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

from mpt_core import Family, Task
from prompts_store import Store, open_store

L = 4
BACKENDS = ("sqlite", "directory")


def store_url(tmp: Path, backend: str = "sqlite") -> str:
    """Where a test's store lives: a SQLite file (the default backend) or a directory."""
    return f"sqlite:///{tmp / 'store.db'}" if backend == "sqlite" else str(tmp / "store")


def make_store(where: Path | str, fingerprint: dict, d: int, tasks: int = 4, seed: int = 0) -> Store:
    """A store (a URL, or a Path for a SQLite file in that directory) with family 'fam' (l=4) and
    tasks t0..t{n-1} with random factors (ranks 1 and 2)."""
    g = torch.Generator().manual_seed(seed)
    store = open_store(store_url(where) if isinstance(where, Path) else where)
    store.put_family(Family("fam", torch.randn(L, d, generator=g), fingerprint))
    made = []
    for k in range(tasks):
        r = 1 + k % 2
        made.append(Task(f"t{k}", "fam", torch.randn(L, r, generator=g) * 2, torch.randn(d, r, generator=g)))
    store.put_tasks(made)
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
def serve(model: Path, store: Path | str, **overrides):
    """Run the real app under uvicorn on 127.0.0.1 over ``store`` (a URL, or a Path as in
    :func:`make_store`); yields (base_url, app) once ready."""
    from service.http.app import create_app
    from service.settings import Settings

    url = store_url(store) if isinstance(store, Path) else store
    settings = Settings(**({"model": str(model), "store": url, "port": 0, "store_poll_s": 0.2} | overrides))
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
