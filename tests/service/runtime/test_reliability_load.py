"""No request can starve the others, on real ``python -m service`` processes (the clients here do
not share the server's GIL): a small request stays fast while the largest allowed request runs
(demo backbone, with its peak memory), one task's flood leaves the other tasks' latency where it
was, and a task over its share of the queue gets 429 while the others get 200."""

import asyncio
import threading
import time
from pathlib import Path

import httpx

from ..process_server import running
from ..serving import make_store, serve

DEMO = Path(__file__).resolve().parents[3] / "demo"


def p99(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_small_request_stays_fast_while_the_largest_allowed_request_runs(tmp_path):
    """Demo backbone, default limits. The largest scoring request the budget allows (one input x
    32 candidates x 512 tokens = MPT_MAX_SCORE_TOKENS) is split into chunks of a few candidates
    that interleave with other requests: small requests sent meanwhile keep p99 <= 2 s (unsplit,
    they waited for the whole request), and the process stays under 1.5 GB at its peak."""
    import shutil

    shutil.copytree(DEMO / "store", tmp_path / "store")
    with running(DEMO / "backbone", str(tmp_path / "store")) as (proc, url):  # a directory store
        issue = {"inputs": ["the " * 499] * 16, "candidates": ["the " * 499] * 32}  # 16 x 32 x 500 tokens
        r = httpx.post(f"{url}/predict?task=review", json=issue, timeout=60)
        assert r.status_code == 413 and r.json()["error"]["code"] == "over_work_budget"
        # 511 words of one token each + EOS = 512 tokens, for the input and for each of 32 candidates
        largest = {"inputs": "the " * 511, "candidates": [f"{w} " + "the " * 510 for w in WORDS]}
        before = peak_rss_mb(proc.pid)
        done, big = threading.Event(), []

        def send_big():
            t0 = time.perf_counter()
            big.append(httpx.post(f"{url}/predict?task=review", json=largest, timeout=120))
            big.append(time.perf_counter() - t0)
            done.set()

        thread = threading.Thread(target=send_big)
        thread.start()
        latencies, statuses = [], []

        async def small(k: int):  # four closed-loop clients, on another task and on the big request's own
            async with httpx.AsyncClient(base_url=url, timeout=60) as c:
                while not done.is_set():
                    body = {"inputs": "is a whale bigger than a cat ?", "candidates": ["yes", "no"]}
                    t0 = time.perf_counter()
                    statuses.append(
                        (await c.post(f"/predict?task={('bigger', 'review')[k % 2]}", json=body)).status_code
                    )
                    latencies.append(time.perf_counter() - t0)

        async def smalls():
            await asyncio.sleep(0.5)  # the big request is queued and running
            await asyncio.gather(*(small(k) for k in range(4)))

        asyncio.run(smalls())
        thread.join()
        response, took = big
        peak = peak_rss_mb(proc.pid)
    assert response.status_code == 200, response.text
    assert len(response.json()["scores"][0]) == 32
    assert set(statuses) == {200} and len(latencies) >= 20, (took, latencies)
    print(f"largest request {took:.1f}s; small p99 {p99(latencies):.2f}s over {len(latencies)}; RSS peak {peak:.0f} MB")
    assert p99(latencies) <= 2.0, (took, sorted(latencies)[-5:])
    assert peak <= 1536, f"peak RSS {peak:.0f} MB (before the request: {before:.0f} MB)"


WORDS = [
    "about",
    "adam",
    "admirable",
    "alan",
    "amazing",
    "and",
    "animal",
    "anna",
    "annoying",
    "ant",
    "apple",
    "are",
    "athens",
    "awful",
    "axe",
    "bad",
    "baker",
    "banana",
    "barn",
    "bear",
    "beautiful",
    "bee",
    "bella",
    "belongs",
    "ben",
    "berlin",
    "beth",
    "bicycle",
    "big",
    "bigger",
    "bird",
    "bitter",
]


def test_a_task_over_its_share_gets_429_with_retry_after_while_others_get_200(tiny_dir, backbone, tmp_path):
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=2)
    # rows wait up to 1.5 s for a batch to fill: the queue is arranged before anything runs
    with serve(tiny_dir, tmp_path / "s", max_task_queue=3, max_inputs=3, max_batch=64, max_wait_ms=1500) as (url, _):

        async def go():
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                first = asyncio.create_task(c.post("/predict?task=t0", json={"inputs": ["a", "b"]}))
                await asyncio.sleep(0.3)
                flood = await c.post("/predict?task=t0", json={"inputs": ["c", "d"]})  # 2 + 2 > 3
                other = await asyncio.gather(*(c.post("/predict?task=t1", json={"inputs": ["e"]}) for _ in range(2)))
                return flood, await first, other

        flood, first, other = asyncio.run(go())
    assert flood.status_code == 429 and flood.headers["retry-after"] == "1"
    assert flood.json()["error"]["code"] == "task_queue_full"
    assert first.status_code == 200 and [r.status_code for r in other] == [200, 200]


def test_a_flooding_task_leaves_the_other_tasks_latency_where_it_was(tiny_dir, backbone, tmp_path):
    """Three tasks send one-input requests, one closed-loop client each; a fourth task floods with
    ten clients of 16 inputs each (10x the clients, 160x the rows). Quiet and flooded periods
    alternate, so the machine's own load hits both alike. The quiet tasks' p99 while flooded stays
    within 2x of their p99 without the flood; on a FIFO batcher they waited behind ~20 batches."""
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=4)
    with running(tiny_dir, tmp_path / "s", max_batch=8, max_wait_ms=20) as (_, url):

        async def scenario():
            quiet: dict[bool, list[float]] = {False: [], True: []}
            flooding = asyncio.Event()
            stop = asyncio.Event()
            limits = httpx.Limits(max_connections=64)
            async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as c:

                async def other(task: str):
                    while not stop.is_set():
                        state = flooding.is_set()
                        t0 = time.perf_counter()
                        r = await c.post(
                            f"/predict?task={task}", json={"inputs": "a quiet request", "max_new_tokens": 2}
                        )
                        assert r.status_code == 200, r.text
                        if flooding.is_set() == state:  # not straddling a switch
                            quiet[state].append(time.perf_counter() - t0)

                async def flood():
                    while not stop.is_set():
                        await flooding.wait()
                        r = await c.post("/predict?task=t0", json={"inputs": ["flood"] * 16, "max_new_tokens": 2})
                        assert r.status_code in (200, 429), r.text

                tasks = [asyncio.create_task(other(f"t{k}")) for k in (1, 2, 3)]
                tasks += [asyncio.create_task(flood()) for _ in range(10)]
                for _ in range(3):  # quiet, flooded, quiet, flooded, ...
                    await asyncio.sleep(2.0)
                    flooding.set()
                    await asyncio.sleep(2.0)
                    flooding.clear()
                stop.set()
                flooding.set()  # release the flooders so they see stop
                await asyncio.gather(*tasks)
            return quiet

            # a burst of this shared machine's own load during flooded periods can inflate one p99;

        # a FIFO batcher fails every attempt (its flooded p99 was 4-5x), so two attempts keep the test
        # able to fail without being flaky
        ratios = []
        for _ in range(2):
            quiet = asyncio.run(scenario())
            alone, flooded = p99(quiet[False]), p99(quiet[True])
            print(
                f"quiet tasks p99: {alone * 1000:.0f} ms alone, {flooded * 1000:.0f} ms flooded "
                f"({len(quiet[False])} / {len(quiet[True])} requests)"
            )
            assert len(quiet[False]) >= 100 and len(quiet[True]) >= 100
            ratios.append(flooded / alone)
            if ratios[-1] <= 2:
                break
    assert min(ratios) <= 2, ratios
