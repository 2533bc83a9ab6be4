"""The server's store work runs on a few threads of its own, so a burst of uploads leaves a bounded
number of store connections (each thread that touches a store keeps one), whatever the size of the
event loop's default executor."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import torch

from mpt_core import Family, Task
from prompts_store import open_store
from service.runtime.metrics import Metrics
from service.runtime.mutations import Mutations
from service.runtime.store_work import THREADS
from service.table.prompt_table import PromptTable

from ..serving import factors_json, make_store, serve, store_url


def test_64_concurrent_writes_use_at_most_the_store_threads(backbone, tmp_path):
    fp, d = backbone.fingerprint, backbone.d_model
    store = open_store(store_url(tmp_path, "sqlite"))  # this thread's connection: 1
    m = Mutations(store, PromptTable(d, torch.device("cpu")), fp, Metrics())
    m._put_family(Family("fam", torch.ones(4, d), fp), True)

    async def burst():
        # what a 64-CPU node gets by default: min(32, 64 + 4) = 32 executor threads
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32))
        tasks = [Task(f"t{i}", "fam", torch.ones(4, 1), torch.ones(d, 1)) for i in range(64)]
        await asyncio.gather(*(m.put_task(t, False) for t in tasks))
        await asyncio.gather(*(m.delete_task(f"t{i}") for i in range(0, 64, 2)))

    asyncio.run(burst())
    assert len(m.table) == 32
    assert len(store._conns) <= 1 + THREADS, len(store._conns)


def test_a_server_keeps_its_store_connections_bounded_under_a_burst_of_uploads(tiny_dir, backbone, tmp_path):
    make_store(tmp_path, backbone.fingerprint, backbone.d_model, tasks=0)
    with serve(tiny_dir, tmp_path) as (url, app):

        async def burst():
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                bodies = [factors_json(f"b{i}", backbone.d_model, i) for i in range(64)]
                return await asyncio.gather(*(client.post("/tasks", json=b) for b in bodies))

        assert [r.status_code for r in asyncio.run(burst())] == [201] * 64
        # the store threads, plus the thread that opened the store and the bulk load's read-ahead
        assert len(app.state.service.state.store._conns) <= THREADS + 2
