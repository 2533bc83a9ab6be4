"""Mixed-task micro-batches, live uploads under load, restarts, outside writers, SIGTERM drain."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
import torch

from mpt_core import Task
from prompts_store import open_store

from ..serving import BACKENDS, L, factors_json, make_store, metric, serve, store_url

INPUTS = [
    "big or small : the ocean",
    "is a dog an animal ?",
    "hot or cold : snow",
    "review: the old film was great",
    "a",
    "the first word of a much longer input sentence here",
]


def test_mixed_task_batch_forms_and_equals_one_by_one(tiny_dir, backbone, tmp_path):
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=4)
    requests = [(f"t{i % 4}", {"inputs": INPUTS[i % len(INPUTS)], "max_new_tokens": 6}) for i in range(12)]
    requests += [(f"t{i % 4}", {"inputs": INPUTS[i], "candidates": ["big", "small", "yes"]}) for i in range(4)]
    with serve(tiny_dir, tmp_path / "s", max_batch=1) as (url, _):  # alone: every request is its own batch
        alone = [httpx.post(f"{url}/predict", params={"task": t}, json=b).json() for t, b in requests]
    with serve(tiny_dir, tmp_path / "s", max_batch=64, max_wait_ms=300) as (url, _):

        async def together():
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                return await asyncio.gather(*(c.post("/predict", params={"task": t}, json=b) for t, b in requests))

        batched = [r.json() for r in asyncio.run(together())]
        assert metric(url, "mpt_mixed_task_batches_total") >= 1
        assert metric(url, "mpt_batch_rows_sum") == len(requests)
        assert metric(url, "mpt_batch_rows_count") < len(requests) / 2  # rows really shared forward passes
    for a, b in zip(alone, batched):
        assert a["outputs"] == b["outputs"]  # greedy strings identical
        if "scores" in a:
            assert b["scores"][0] == pytest.approx(a["scores"][0], abs=1e-5)


def test_upload_and_delete_during_load(tiny_dir, backbone, tmp_path):
    d = backbone.d_model
    make_store(tmp_path / "s", backbone.fingerprint, d, tasks=2)
    with serve(tiny_dir, tmp_path / "s", max_batch=16, max_wait_ms=2) as (url, _):

        async def scenario():
            stop, statuses = asyncio.Event(), []
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:

                async def load(k):
                    while not stop.is_set():
                        r = await c.post(
                            "/predict",
                            params={"task": f"t{k % 2}"},
                            json={"inputs": INPUTS[k % 6], "max_new_tokens": 3},
                        )
                        statuses.append(r.status_code)

                workers = [asyncio.create_task(load(k)) for k in range(8)]
                await asyncio.sleep(0.5)
                up = await c.post("/tasks", json=factors_json("live", d, seed=9))
                first = await c.post("/predict", params={"task": "live"}, json={"inputs": "x"})
                await asyncio.sleep(0.3)
                gone = await c.delete("/tasks/live")
                after = await c.post("/predict", params={"task": "live"}, json={"inputs": "x"})
                await asyncio.sleep(0.3)
                stop.set()
                await asyncio.gather(*workers)
            return up, first, gone, after, statuses

        up, first, gone, after, statuses = asyncio.run(scenario())
    assert up.status_code == 201
    assert first.status_code == 200  # the next request is served with the uploaded task
    assert gone.status_code == 204 and after.status_code == 404
    assert len(statuses) > 20 and set(statuses) == {200}  # no request of the load failed


@pytest.mark.parametrize("backend", BACKENDS)
def test_acknowledged_tasks_survive_a_restart(tiny_dir, backbone, tmp_path, backend):
    d = backbone.d_model
    where = store_url(tmp_path, backend)
    make_store(where, backbone.fingerprint, d, tasks=1)
    body = {"inputs": ["is a dog an animal ?"], "candidates": ["yes", "no"]}
    with serve(tiny_dir, where) as (url, _):
        for k in range(3):
            assert httpx.post(f"{url}/tasks", json=factors_json(f"kept-{k}", d, seed=k)).status_code == 201
        before = [httpx.post(f"{url}/predict?task=kept-{k}", json=body).json() for k in range(3)]
    with serve(tiny_dir, where) as (url, _):
        names = {t["name"] for t in httpx.get(f"{url}/tasks").json()["tasks"]}
        assert {"kept-0", "kept-1", "kept-2"} <= names
        after = [httpx.post(f"{url}/predict?task=kept-{k}", json=body).json() for k in range(3)]
    assert after == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_writes_by_another_process_are_noticed(tiny_dir, backbone, tmp_path, backend):
    d = backbone.d_model
    where = store_url(tmp_path, backend)
    store = make_store(where, backbone.fingerprint, d, tasks=1)
    with serve(tiny_dir, where, store_poll_s=0.2) as (url, _):
        assert httpx.get(f"{url}/tasks/outside").status_code == 404
        writer = open_store(where)  # as the training CLI would, in its own process
        writer.put_task(Task("outside", "fam", torch.randn(L, 1), torch.randn(d, 1)))
        deadline = time.monotonic() + 5
        while httpx.get(f"{url}/tasks/outside").status_code != 200:
            assert time.monotonic() < deadline, "the outside write was not noticed within 5 s"
            time.sleep(0.1)
        assert httpx.post(f"{url}/predict?task=outside", json={"inputs": "x"}).status_code == 200
        store.delete_task("outside")
        deadline = time.monotonic() + 5
        while httpx.post(f"{url}/predict?task=outside", json={"inputs": "x"}).status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_sigterm_drains_in_flight_requests(tiny_dir, backbone, tmp_path):
    """A real `python -m service` process: SIGTERM lets queued requests finish, then it exits 0."""
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=2)
    env = dict(
        os.environ,
        MPT_MODEL=str(tiny_dir),
        MPT_STORE=store_url(tmp_path / "s"),
        MPT_MAX_WAIT_MS="800",
        MPT_MAX_BATCH="64",
        MPT_LOG_LEVEL="warning",
    )
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, (
                proc.stdout.read() if proc.poll() is not None else "no ready"
            )
            time.sleep(0.1)

        async def in_flight():
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                reqs = [
                    asyncio.create_task(
                        c.post("/predict", params={"task": f"t{k % 2}"}, json={"inputs": INPUTS[k % 6]})
                    )
                    for k in range(6)
                ]
                await asyncio.sleep(0.3)  # the rows wait in the batcher (max_wait 800 ms)
                proc.send_signal(signal.SIGTERM)
                return await asyncio.gather(*reqs)

        responses = asyncio.run(in_flight())
        assert [r.status_code for r in responses] == [200] * 6
        assert proc.wait(timeout=30) == 0
        with pytest.raises(httpx.TransportError):  # and it is gone: new connections are refused
            httpx.get(f"{url}/health/live", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
