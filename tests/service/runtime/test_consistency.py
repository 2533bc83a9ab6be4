"""Read views under concurrent writes, through the real server: every answer is a status the API
promises for that call, never one borrowed from a write that raced it.

Two races this guards against: a listing that looked names up one by one after sorting them (a
concurrent DELETE made the whole listing 404), and a PUT that described the task with a second
lookup after writing it (a concurrent DELETE turned a successful write into a 404). Run against
the code before the fix, it failed every time it was tried (1 to 10 such answers among 700 to
1,700 requests); the races are timing-dependent, so a single run proves less than that record.
"""

import asyncio
import collections
import random
import sys
import time

import httpx

from ..serving import factors_json, make_store, serve

NAMES = ["w0", "w1"]  # few names, many writers: writes to one name collide often
PROMISED = {"list": {200}, "get": {200, 404}, "put": {200, 201}, "delete": {204, 404}}
ENOUGH = 60  # successful PUTs and DELETEs each: enough chances for a race (~3 s on an idle machine)
CAP_S = 15.0  # a loaded machine gets there later; stop here regardless


def test_concurrent_writers_and_readers_get_only_promised_statuses(tiny_dir, backbone, tmp_path):
    d = backbone.d_model
    make_store(tmp_path / "s", backbone.fingerprint, d, tasks=200)  # listings long enough to be raced
    bodies = {name: factors_json(name, d, seed=k) for k, name in enumerate(NAMES)}
    seen: collections.Counter = collections.Counter()

    def done(cap: float) -> bool:
        puts, deletes = seen["put", 200] + seen["put", 201], seen["delete", 204]
        return time.monotonic() > cap or min(puts, deletes) >= ENOUGH

    async def scenario(url: str) -> None:
        cap = time.monotonic() + CAP_S
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as c:

            async def writer(k: int) -> None:
                rng = random.Random(k)
                while not done(cap):
                    name = rng.choice(NAMES)
                    if rng.random() < 0.5:
                        seen["put", (await c.put(f"/tasks/{name}", json=bodies[name])).status_code] += 1
                    else:
                        seen["delete", (await c.delete(f"/tasks/{name}")).status_code] += 1

            async def reader(k: int) -> None:
                rng = random.Random(100 + k)
                while not done(cap):
                    seen["list", (await c.get("/tasks")).status_code] += 1
                    seen["get", (await c.get(f"/tasks/{rng.choice(NAMES)}")).status_code] += 1

            await asyncio.gather(*(writer(k) for k in range(8)), *(reader(k) for k in range(4)))

    # switching threads every 10 µs instead of every 5 ms makes the server's event loop and its
    # worker threads interleave far more often, so a race shows up within seconds
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        with serve(tiny_dir, tmp_path / "s") as (url, _):
            asyncio.run(scenario(url))
    finally:
        sys.setswitchinterval(interval)
    wrong = {key: n for key, n in seen.items() if key[1] not in PROMISED[key[0]]}
    assert not wrong, f"statuses the API does not promise: {wrong} (all: {dict(seen)})"
    # the run exercised every kind of call, and writes really raced (both outcomes of each happened)
    assert {("put", 201), ("put", 200), ("delete", 204), ("delete", 404), ("list", 200), ("get", 200)} <= set(seen)
