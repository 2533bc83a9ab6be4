"""Training through the API end to end, on the tiny T5 and a SQLite store: the real server, real
`mpt worker` processes. A job is submitted, trained, and its task served; jobs are cancelled while
queued and while running; a worker killed mid-job (kill -9) loses the job to another worker, which
finishes it; a server killed with jobs queued loses none of them."""

from __future__ import annotations

import signal

import httpx

from prompts_store import open_store

from .. import process_server
from ..jobs_helpers import AUTH, TOKEN, examples, stop, wait_job, wait_served, worker
from ..serving import make_store, serve, store_url


def test_a_job_trains_a_task_that_the_server_then_serves(tiny_dir, backbone, toy_tasks, tmp_path):
    url_store = store_url(tmp_path)
    make_store(url_store, backbone.fingerprint, backbone.d_model).close()
    task = toy_tasks["temperature"]
    body = {"examples": examples(task, n=12), "dev": examples(task, "dev", 8), "steps": 30, "seed": 4, "init": "t0"}
    with serve(tiny_dir, url_store, admin_token=TOKEN) as (url, _), worker(tiny_dir, url_store) as proc:
        r = httpx.post(f"{url}/tasks/heat/train", params={"family": "fam"}, json=body, headers=AUTH)
        assert r.status_code == 202, r.text
        job = r.json()["job"]
        assert r.json() == {"job": job, "status": "queued"} and r.headers["location"] == f"/jobs/{job}"
        done = wait_job(url, job, lambda j: j["status"] not in ("queued", "running"))
        assert done["status"] == "succeeded", done["error"]
        assert (done["step"], done["steps"], done["examples"], done["attempts"], done["error"]) == (30, 30, 12, 1, None)
        assert done["loss"] > 0 and 0 < done["elapsed_s"] < 120 and done["finished_at"] >= done["started_at"]
        assert {"exact_match", "rank_accuracy", "f1", "majority"} <= set(done["dev"])
        served = wait_served(url, "heat")
        assert served.status_code == 200 and served.json()["task"] == "heat"
        assert httpx.get(f"{url}/tasks/heat").json()["source"] == "mpt:adapt:factors:from=fam"
        listed = httpx.get(f"{url}/jobs", params={"task": "heat"}).json()
        assert [j["id"] for j in listed["jobs"]] == [job] and listed["next"] is None
        assert httpx.get(f"{url}/jobs", params={"status": "succeeded"}).json()["jobs"][0]["id"] == job
        log = stop(proc)
    assert proc.returncode == 0, log
    lines = [line for line in log.splitlines() if f"job {job} " in line]
    assert len(lines) == 1 and "task=heat family=fam mode=factors succeeded" in lines[0], log


def test_cancel_a_queued_job_at_once_and_a_running_one_at_its_next_step(tiny_dir, backbone, toy_tasks, tmp_path):
    url_store = store_url(tmp_path)
    make_store(url_store, backbone.fingerprint, backbone.d_model).close()
    long = {"examples": examples(toy_tasks["size"]), "steps": 2000, "init": "ones"}
    with serve(tiny_dir, url_store, admin_token=TOKEN) as (url, _), worker(tiny_dir, url_store):
        running = httpx.post(f"{url}/tasks/long/train", params={"family": "fam"}, json=long, headers=AUTH).json()["job"]
        wait_job(url, running, lambda j: j["status"] == "running" and j["step"] > 0)
        queued = httpx.post(f"{url}/tasks/next/train", params={"family": "fam"}, json=long, headers=AUTH).json()["job"]
        r = httpx.delete(f"{url}/jobs/{queued}", headers=AUTH)
        assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["step"] == 0
        r = httpx.delete(f"{url}/jobs/{running}", headers=AUTH)
        assert r.status_code == 202 and r.json()["status"] == "running" and r.json()["cancel_requested"]
        ended = wait_job(url, running, lambda j: j["status"] != "running", timeout=30)
        assert ended["status"] == "cancelled" and 0 < ended["step"] < 2000 and ended["finished_at"]
        r = httpx.delete(f"{url}/jobs/{running}", headers=AUTH)
        assert r.status_code == 409 and "already finished: cancelled" in r.json()["error"]["message"]
        assert httpx.delete(f"{url}/jobs/987654", headers=AUTH).status_code == 404
        assert httpx.delete(f"{url}/jobs/{queued}").status_code == 401
        for task in ("long", "next"):
            assert httpx.get(f"{url}/tasks/{task}").status_code == 404


def test_a_worker_killed_mid_job_loses_it_to_another_that_finishes_it(tiny_dir, backbone, toy_tasks, tmp_path):
    url_store = store_url(tmp_path)
    make_store(url_store, backbone.fingerprint, backbone.d_model).close()
    body = {"examples": examples(toy_tasks["animal"]), "steps": 100, "init": "ones"}
    flags = ("--lease-s", "1", "--yield-ms", "20")  # a short lease; steps slow enough to kill one mid-job
    with (
        serve(tiny_dir, url_store, admin_token=TOKEN) as (url, _),
        worker(tiny_dir, url_store, *flags) as a,
        worker(tiny_dir, url_store, *flags) as b,
    ):
        job = httpx.post(f"{url}/tasks/animal/train", params={"family": "fam"}, json=body, headers=AUTH).json()["job"]
        before = wait_job(url, job, lambda j: j["status"] == "running" and j["step"] > 0)
        first, second = (a, b) if before["worker"].endswith(f"-{a.pid}") else (b, a)
        assert before["worker"].endswith(f"-{first.pid}")
        first.send_signal(signal.SIGKILL)  # no chance to give the job back
        first.wait(timeout=30)
        done = wait_job(url, job, lambda j: j["status"] in ("succeeded", "failed"), timeout=120)
        assert done["status"] == "succeeded" and done["attempts"] == 2 and done["worker"].endswith(f"-{second.pid}")
        assert done["step"] == 100 and wait_served(url, "animal").status_code == 200
        log = stop(second)
    assert "attempt 2/3" in log, log


def test_a_server_killed_with_jobs_queued_loses_none_of_them(tiny_dir, backbone, toy_tasks, tmp_path):
    make_store(tmp_path, backbone.fingerprint, backbone.d_model).close()
    url_store = store_url(tmp_path)
    body = {"examples": examples(toy_tasks["polarity"]), "steps": 5, "init": "ones"}
    with process_server.running(tiny_dir, tmp_path, admin_token=TOKEN) as (proc, url):
        jobs = [
            httpx.post(f"{url}/tasks/{name}/train", params={"family": "fam"}, json=body, headers=AUTH).json()["job"]
            for name in ("p1", "p2")
        ]
        proc.send_signal(signal.SIGKILL)  # 202 meant the job row was committed
        proc.wait(timeout=30)
    with open_store(url_store) as store:
        assert [(j.id, j.status) for j in store.list_jobs()] == [(jobs[0], "queued"), (jobs[1], "queued")]
    with worker(tiny_dir, url_store), serve(tiny_dir, url_store, admin_token=TOKEN) as (url, _):  # a new server
        for job, name in zip(jobs, ("p1", "p2")):
            assert wait_job(url, job, lambda j: j["status"] == "succeeded")["task"] == name
            assert wait_served(url, name).status_code == 200
