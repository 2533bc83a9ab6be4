"""SIGTERM drains as Kubernetes expects, on a real ``python -m service`` process: the listener
stays open, readiness and new work answer 503 + Retry-After, every in-flight request finishes,
then the listener closes and the process exits 0. The requests are slow because the batch waits
(``max_wait_ms``) for rows that never come, not because of sleeps in the app."""

import asyncio
import signal
import threading
import time

import httpx
import pytest

from .process_server import running
from .serving import make_store, metric, store_url

SLOW = 50


async def _wait_queued(url: str, rows: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while metric(url, "mpt_queue_rows") < rows:
        assert time.monotonic() < deadline, f"{rows} rows never queued"
        await asyncio.sleep(0.05)


def test_sigterm_keeps_the_listener_answers_503_and_finishes_every_in_flight_request(tiny_dir, backbone, tmp_path):
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=2)
    # one batch of all 50 rows closes 4 s after the first arrived: the drain window is ~3 s
    with running(tiny_dir, tmp_path / "s", max_wait_ms=4000, max_batch=256) as (proc, url):

        async def scenario():
            limits = httpx.Limits(max_connections=SLOW + 10)
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
                slow = [
                    asyncio.create_task(c.post("/predict", params={"task": f"t{k % 2}"}, json={"inputs": f"input {k}"}))
                    for k in range(SLOW)
                ]
                await _wait_queued(url, SLOW)
                signalled = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.1)
                probes = []
                # each probe on a new connection (the server asks to close them while draining):
                # a refused connection would raise here and fail the test
                while time.monotonic() - signalled < 2.0:
                    async with httpx.AsyncClient(base_url=url, timeout=10) as fresh:
                        probes.append(await fresh.get("/health/ready"))
                        probes.append(await fresh.post("/predict", params={"task": "t0"}, json={"inputs": "new"}))
                        probes.append(await fresh.get("/tasks"))
                    assert not any(t.done() for t in slow), "the slow requests finished inside the probe window"
                    await asyncio.sleep(0.05)
                return await asyncio.gather(*slow), probes

        done, probes = asyncio.run(scenario())
        assert [r.status_code for r in done] == [200] * SLOW  # 0 dropped
        assert len(probes) >= 30
        assert {r.status_code for r in probes} == {503}
        assert all(r.headers.get("retry-after") == "1" for r in probes)
        assert all(r.headers.get("connection") == "close" for r in probes)
        assert probes[0].json()["status"] == "draining"
        assert probes[1].json()["error"]["code"] == "not_ready"
        assert proc.wait(timeout=30) == 0
        with pytest.raises(httpx.TransportError):  # and now it is gone
            httpx.get(f"{url}/health/live", timeout=2)


def test_drain_timeout_bounds_how_long_in_flight_requests_keep_the_server(tiny_dir, backbone, tmp_path):
    """The same server class in a thread (the exit signal handed to it directly): with requests
    that would wait 10 s for their batch, the server is gone ~0.5 s + uvicorn's last 2 s later."""
    from service.__main__ import DrainingServer, uvicorn_config
    from service.app import create_app
    from service.settings import Settings

    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=1)
    s = Settings(
        model=str(tiny_dir),
        store=store_url(tmp_path / "s"),
        port=0,
        log_level="warning",
        max_wait_ms=10000,
        max_batch=256,
        drain_timeout_s=0.5,
    )
    app = create_app(s)
    server = DrainingServer(
        uvicorn_config(app, s), app.state.service.begin_drain, lambda: app.state.in_flight.count, 0.5
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not (server.started and app.state.service.ready):
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"

    async def scenario():
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            stuck = [asyncio.create_task(c.post("/predict?task=t0", json={"inputs": "x"})) for _ in range(3)]
            await _wait_queued(url, 3)
            started = time.monotonic()
            server.handle_exit(signal.SIGTERM, None)
            await asyncio.to_thread(thread.join, 30)
            took = time.monotonic() - started
            await asyncio.gather(*stuck, return_exceptions=True)
            return took

    took = asyncio.run(scenario())
    assert not thread.is_alive()
    assert took < 7  # 0.5 s of drain + 2 s for what is left; not the 10 s the batch would wait
