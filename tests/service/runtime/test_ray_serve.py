"""`mpt serve --ray`: two replicas of the real server on a local Ray cluster, one shared store, the
tiny T5, Ray's HTTP proxy in front. One cluster serves the whole module (it takes ~20 s to start):
an upload through the proxy reaches both replicas; a training job is run by the Ray training worker
(`--workers 1`) and its task served by both; `kill -9` of a replica under load is repaired by Ray
and loses no acknowledged upload; SIGTERM stops the applications and the cluster.

The store is one SQLite file (one host; training jobs need a database store); the same test on
PostgreSQL needs only another --store."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from ..jobs_helpers import examples, wait_job
from ..serving import factors_json, make_store, store_url

pytest.importorskip("ray.serve", reason="the Ray Serve tests need the [ray] extra: pip install 'mpt-serve[ray]'")

ROOT = Path(__file__).resolve().parents[3]
START_S = 240


def replicas_answering(url: str, want: int = 2, within_s: float = 30.0) -> set[str]:
    """The replicas that answer /health/ready, asked until ``want`` of them have answered or
    ``within_s`` has passed: Ray's router may send a burst of calls to one replica (it prefers the
    less loaded of two, and a fresh replica starts cold), so a fixed number of calls proves nothing."""
    seen: set[str] = set()
    deadline = time.monotonic() + within_s
    while len(seen) < want and time.monotonic() < deadline:
        seen.add(httpx.get(f"{url}/health/ready").headers["x-mpt-replica"])
    return seen


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pid(replica: str) -> int:
    return int(replica.rsplit("-", 1)[1])  # ray-<id>-<host>-<pid>


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Cluster:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path, d: int):
        self.proc, self.url, self.log, self.d = proc, url, log, d

    def predict(self, client: httpx.Client, task: str) -> httpx.Response:
        return client.get(f"{self.url}/predict", params={"task": task, "input": "big or small : the ocean"})

    def served_by_all(self, task: str, replicas: int = 2, timeout: float = 60) -> set[str]:
        """Poll until ``replicas`` distinct replicas answered 200 for ``task``; their ids."""
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=30) as c:
            while len(seen) < replicas and time.monotonic() < deadline:
                r = self.predict(c, task)
                if r.status_code == 200:
                    seen.add(r.headers["x-mpt-replica"])
        return seen


@pytest.fixture(scope="module")
def cluster(tiny_dir, backbone, tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    store = store_url(root)  # one SQLite file: replicas on one host share it
    make_store(store, backbone.fingerprint, backbone.d_model, tasks=2)
    port, log = _free_port(), root / "serve.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPT_STORE_POLL_S="0.1", MPT_MAX_WAIT_MS="2", RAY_DEDUP_LOGS="0")
    argv = [sys.executable, "-m", "mpt_cli", "serve", "--ray", "--replicas", "2", "--num-cpus", "1", "--workers", "1"]
    argv += ["--model", str(tiny_dir), "--store", store, "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while "mpt serve --ray:" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mpt serve --ray did not start:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.2)
        yield Cluster(proc, url, log, backbone.d_model)
    finally:
        if proc.poll() is None:  # a failed test left it running: take the whole group down
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_an_upload_through_the_proxy_is_served_by_both_replicas(cluster):
    ready = replicas_answering(cluster.url)
    assert len(ready) == 2, f"the proxy should spread requests over two replicas, saw {ready}"
    r = httpx.post(f"{cluster.url}/tasks", json=factors_json("fresh", cluster.d, seed=11))
    assert r.status_code == 201, r.text
    assert cluster.served_by_all("fresh") == ready  # the other replica learned it from the store


def test_a_training_job_is_run_by_the_ray_worker_and_served_by_both_replicas(cluster, toy_tasks):
    replicas = replicas_answering(cluster.url)
    body = {"examples": examples(toy_tasks["size"]), "steps": 20, "init": "ones"}
    r = httpx.post(f"{cluster.url}/tasks/trained/train", params={"family": "fam"}, json=body)
    assert r.status_code == 202, r.text
    done = wait_job(cluster.url, r.json()["job"], lambda j: j["status"] not in ("queued", "running"))
    assert done["status"] == "succeeded" and done["worker"].startswith("ray-"), done
    assert cluster.served_by_all("trained") == replicas


def test_kill_9_of_a_replica_under_load_is_replaced_and_loses_no_acknowledged_upload(cluster, record_property):
    before = replicas_answering(cluster.url)
    assert len(before) == 2
    stop = threading.Event()
    results: list[tuple[float, int, str]] = []  # (time, status or 0 for no answer, replica)
    acked: list[str] = []
    lock = threading.Lock()

    def predictor(seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                try:
                    r = cluster.predict(c, rnd.choice(["t0", "t1", "fresh"]))
                    row = (time.monotonic(), r.status_code, r.headers.get("x-mpt-replica", ""))
                except httpx.TransportError:
                    row = (time.monotonic(), 0, "")
                with lock:
                    results.append(row)

    def uploader() -> None:
        with httpx.Client(timeout=30) as c:
            for i in range(10_000):
                if stop.is_set():
                    return
                try:
                    r = c.post(f"{cluster.url}/tasks", json=factors_json(f"up{i:03d}", cluster.d, seed=100 + i))
                    if r.status_code == 201:
                        acked.append(f"up{i:03d}")
                except httpx.TransportError:
                    pass
                time.sleep(0.1)

    threads = [threading.Thread(target=predictor, args=(i,)) for i in range(8)] + [threading.Thread(target=uploader)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        victim = sorted(before)[0]
        os.kill(_pid(victim), signal.SIGKILL)
        killed_at = time.monotonic()
        deadline = killed_at + 120
        replaced_at = None
        while replaced_at is None and time.monotonic() < deadline:
            time.sleep(0.2)
            with lock:
                fresh = [t for t, status, rep in results if status == 200 and rep and rep not in before]
            replaced_at = min(fresh) if fresh else None
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert replaced_at is not None, "Ray did not replace the killed replica within 120 s"

    window = [(status, rep) for t, status, rep in results if killed_at <= t <= replaced_at]
    errors = Counter(status for status, _ in window if status != 200)
    rate = sum(errors.values()) / max(1, len(window))
    after = [status for t, status, _ in results if t > replaced_at + 0.5]
    summary = (
        f"replacement took {replaced_at - killed_at:.1f}s; {len(window)} predictions meanwhile, "
        f"{sum(errors.values())} failed ({rate:.1%}; by status {dict(errors)}); {len(acked)} uploads acknowledged"
    )
    print(f"\nkill -9 of {victim}: {summary}")
    record_property("kill9_replacement", summary)
    assert after and all(s == 200 for s in after), f"errors after the replacement: {Counter(after)}"

    now = replicas_answering(cluster.url)
    assert len(now) == 2 and victim not in now
    assert acked, "no upload was acknowledged"
    with httpx.Client(timeout=30) as c:
        missing = [name for name in acked if cluster.predict(c, name).status_code != 200]
    assert not missing, f"acknowledged uploads not served: {missing}"
    for name in (acked[0], acked[-1]):
        assert cluster.served_by_all(name) == now


def test_sigterm_stops_the_application_and_the_local_cluster(cluster):
    replicas = replicas_answering(cluster.url)
    ray_processes = _children(cluster.proc.pid)  # gcs_server, raylet (whose children are the workers)
    workers = [p for pid in ray_processes for p in _children(pid)]
    assert len(ray_processes) >= 2 and {_pid(r) for r in replicas} <= set(workers)
    cluster.proc.send_signal(signal.SIGTERM)
    assert cluster.proc.wait(timeout=120) == 0, cluster.log.read_text(errors="replace")[-3000:]
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in ray_processes + workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in ray_processes + workers if _alive(p)], "Ray processes outlived mpt serve --ray"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{cluster.url}/health/live", timeout=2)
