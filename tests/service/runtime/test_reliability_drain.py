"""SIGTERM drains as Kubernetes expects, on a real ``python -m service`` process: the listener
stays open, readiness and new work answer 503 + Retry-After, every in-flight request finishes,
then the listener closes and the process exits 0. The requests are slow because each is a lot of
work (16 inputs generating 32 tokens, in batches of 8 rows, the requests' rows interleaved
round-robin: every request finishes near the end), not because of sleeps in the app or a batch
waiting for rows (the drain closes the batch being formed at once)."""

import asyncio
import signal
import threading
import time

import httpx
import pytest

from ..process_server import running
from ..serving import make_store, metric, store_url

SLOW = 50
BIG = {"inputs": [f"input number {j}" for j in range(16)], "max_new_tokens": 32}  # ~0.1 s of work, each
HEAVY = {"max_batch": 8, "max_queue": 8192, "max_task_queue": 8192, "max_new_tokens": 64, "max_generate_tokens": 4096}


async def _wait_queued(url: str, rows: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while metric(url, "mpt_queue_rows") < rows:
        assert time.monotonic() < deadline, f"{rows} rows never queued"
        await asyncio.sleep(0.05)


def test_sigterm_keeps_the_listener_answers_503_and_finishes_every_in_flight_request(tiny_dir, backbone, tmp_path):
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=2)
    # 50 x 16 rows of 32 tokens: ~6 s of work on 2 shared cores; the probe window is 1 s
    with running(tiny_dir, tmp_path / "s", drain_timeout_s=120, **HEAVY) as (proc, url):

        async def scenario():
            limits = httpx.Limits(max_connections=SLOW + 10)
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
                slow = [
                    asyncio.create_task(c.post("/predict", params={"task": f"t{k % 2}"}, json=BIG)) for k in range(SLOW)
                ]
                await _wait_queued(url, SLOW)
                signalled = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.1)
                probes = []
                # each probe on a new connection (the server asks to close them while draining):
                # a refused connection would raise here and fail the test
                while time.monotonic() - signalled < 1.0:
                    async with httpx.AsyncClient(base_url=url, timeout=10) as fresh:
                        probes.append(await fresh.get("/health/ready"))
                        probes.append(await fresh.post("/predict", params={"task": "t0"}, json={"inputs": "new"}))
                        probes.append(await fresh.get("/tasks"))
                    assert not any(t.done() for t in slow), "the slow requests finished inside the probe window"
                    await asyncio.sleep(0.05)
                return await asyncio.gather(*slow), probes

        done, probes = asyncio.run(scenario())
        assert [r.status_code for r in done] == [200] * SLOW  # 0 dropped
        assert len(probes) >= 12
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
    that take ~10 s of work, the server is gone ~0.5 s + uvicorn's last 2 s later."""
    from service.__main__ import DrainingServer, uvicorn_config
    from service.http.app import create_app
    from service.settings import Settings

    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=1)
    s = Settings(
        model=str(tiny_dir),
        store=store_url(tmp_path / "s"),
        port=0,
        log_level="warning",
        drain_timeout_s=0.5,
        **(HEAVY | {"max_batch": 4}),
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
            long = BIG | {"inputs": BIG["inputs"] * 4, "max_new_tokens": 64}  # 64 rows of 64 tokens, each
            stuck = [asyncio.create_task(c.post("/predict?task=t0", json=long)) for _ in range(10)]
            await _wait_queued(url, 3)
            started = time.monotonic()
            server.handle_exit(signal.SIGTERM, None)
            await asyncio.to_thread(thread.join, 30)
            took = time.monotonic() - started
            answers = await asyncio.gather(*stuck, return_exceptions=True)
            return took, answers

    took, answers = asyncio.run(scenario())
    assert not thread.is_alive()
    assert took < 7  # 0.5 s of drain + 2 s for what is left; not the ~10 s of work
    assert not all(isinstance(a, httpx.Response) and a.status_code == 200 for a in answers)  # cut short


def test_requests_answered_503_by_the_drain_are_not_counted_in_flight(tiny_dir, tmp_path):
    """The drain waits for the requests in flight when it began; the requests that arrive meanwhile
    (each answered 503 at once) must not keep it waiting: a client retrying in a loop would
    otherwise hold the server until the drain timeout. Driven through the app's ASGI interface
    (nothing loaded: a request before the drain is answered 503 "starting", and counted)."""
    from service.http.app import create_app
    from service.settings import Settings

    app = create_app(Settings(model=str(tiny_dir), store=store_url(tmp_path / "s")))
    in_flight = app.state.in_flight

    def scope(method: str, path: str, query: bytes = b"") -> dict:
        return {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
            "headers": [(b"host", b"x"), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
        }  # fmt: skip

    async def receive():
        return {"type": "http.request", "body": b'{"inputs": "x"}', "more_body": False}

    async def held(method: str, path: str, query: bytes = b""):
        """The request, answering: its response held at http.response.start; (task, status, release)."""
        started, release, status = asyncio.Event(), asyncio.Event(), []

        async def send(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
                started.set()
                await release.wait()

        task = asyncio.create_task(app(scope(method, path, query), receive, send))
        await asyncio.wait_for(started.wait(), 10)
        return task, status, release

    async def scenario():
        before, status, release_before = await held("POST", "/predict", b"task=t0")  # before the drain
        assert status == [503] and in_flight.count == 1
        app.state.service.begin_drain()
        for method, path, query in (("POST", "/predict", b"task=t0"), ("GET", "/tasks", b"")):
            task, status, release = await held(method, path, query)
            assert status == [503] and in_flight.count == 1  # only the request from before the drain
            release.set()
            await task
        release_before.set()
        await before
        assert in_flight.count == 0

    asyncio.run(scenario())
