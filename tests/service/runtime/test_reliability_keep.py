"""What already held, kept as tests: kill -9 during uploads loses no acknowledged write, overload
answers 503 + Retry-After with bounded memory, and admin tokens are compared in constant time."""

import asyncio
import hmac
import signal
from pathlib import Path

import httpx
import torch

from prompts_store import open_store

from ..process_server import running
from ..serving import factors_json, make_store, serve, store_url

CYCLES = 5


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_kill_9_during_uploads_loses_no_acknowledged_write(tiny_dir, backbone, tmp_path):
    """Five times: a real server takes uploads from four clients and is killed with SIGKILL in the
    middle of them. Every upload it acknowledged (201) is in the store afterwards, byte for byte;
    and the server starts again on that store every time."""
    d = backbone.d_model
    make_store(tmp_path / "s", backbone.fingerprint, d, tasks=1)
    acknowledged: dict[str, int] = {}  # name -> seed of its factors

    async def upload(url: str, cycle: int, client: int, stop: asyncio.Event):
        k = 0
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            while not stop.is_set():
                name, seed = f"c{cycle}-u{client}-{k}", 1000 * cycle + 100 * client + k
                try:
                    r = await c.post("/tasks", json=factors_json(name, d, seed))
                except httpx.TransportError:
                    return  # killed under this upload: not acknowledged
                if r.status_code == 201:
                    acknowledged[name] = seed
                k += 1

    async def kill_during_uploads(proc, url: str, cycle: int):
        stop = asyncio.Event()
        clients = [asyncio.create_task(upload(url, cycle, i, stop)) for i in range(4)]
        await asyncio.sleep(0.4 + 0.15 * cycle)  # a different moment each cycle
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
        stop.set()
        await asyncio.gather(*clients)

    for cycle in range(CYCLES):
        with running(tiny_dir, tmp_path / "s") as (proc, url):
            asyncio.run(kill_during_uploads(proc, url, cycle))
    assert len(acknowledged) >= 10 * CYCLES, len(acknowledged)
    store = open_store(store_url(tmp_path / "s"))
    for name, seed in acknowledged.items():
        want = factors_json(name, d, seed)
        task = store.get_task(name)
        assert torch.equal(task.u.flatten(), torch.tensor(want["u"])), name
        assert torch.equal(task.v.flatten(), torch.tensor(want["v"])), name


def test_overload_answers_503_with_retry_after_and_memory_stays_bounded(tiny_dir, backbone, tmp_path):
    """200 clients at once against a queue of 64 rows: the excess is refused at once with 503 +
    Retry-After (not queued without bound), everything queued is answered, and the server's peak
    memory grows by little (the refused requests' bodies are dropped)."""
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=2)
    with running(tiny_dir, tmp_path / "s", max_queue=64, max_task_queue=64, max_batch=16, max_wait_ms=50) as (
        proc,
        url,
    ):
        httpx.post(f"{url}/predict?task=t0", json={"inputs": "warm"})
        before = _peak_rss_mb(proc.pid)
        text = "an input of a few words " * 40  # ~1 KB each, 8 per request

        async def scenario():
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
                return await asyncio.gather(
                    *(
                        c.post(f"/predict?task=t{k % 2}", json={"inputs": [text] * 8, "max_new_tokens": 4})
                        for k in range(200)
                    )
                )

        responses = asyncio.run(scenario())
        after = _peak_rss_mb(proc.pid)
    statuses = [r.status_code for r in responses]
    refused = [r for r in responses if r.status_code == 503]
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 8
    assert len(refused) >= 100, statuses  # 200 x 8 rows >> 64 queued
    assert all(r.headers["retry-after"] == "1" and r.json()["error"]["code"] == "overloaded" for r in refused)
    assert after - before < 200, (before, after)


def test_admin_tokens_are_compared_in_constant_time(tiny_dir, backbone, tmp_path, monkeypatch):
    """The admin check goes through hmac.compare_digest (recorded here), never ==: replacing it
    with a plain comparison makes this test fail."""
    calls = []
    real = hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=1)
    with serve(tiny_dir, tmp_path / "s", admin_token="s3cret-token") as (url, _):
        body = factors_json("guarded", backbone.d_model, seed=1)
        assert httpx.post(f"{url}/tasks", json=body, headers={"authorization": "Bearer wrong"}).status_code == 403
        assert (
            httpx.post(f"{url}/tasks", json=body, headers={"authorization": "Bearer s3cret-token"}).status_code == 201
        )
    assert (b"wrong", b"s3cret-token") in calls and (b"s3cret-token", b"s3cret-token") in calls
