"""The training-job API's answers to bad input and limits (no worker runs: jobs stay queued): 422
naming the row, 413 over the example and step limits, 429 with Retry-After over the concurrency
limits, 409 for taken names and busy tasks, 404 for unknown families and jobs, 415, 401/403; a
directory store answers 501. The real app over a real SQLite store, through HTTP."""

from __future__ import annotations

import json

import httpx
import pytest
import torch

from mpt_core import Family

from ..jobs_helpers import AUTH, TOKEN
from ..serving import L, make_store, serve, store_url

LIMITS = dict(job_steps=5, max_job_examples=4, max_job_steps=50, max_jobs=3, max_family_jobs=2, max_job_input_tokens=12)
OK = [{"input": "hot or cold : fire", "target": "hot"}, {"input": "hot or cold : snow", "target": "cold"}]


@pytest.fixture(scope="module")
def server(tiny_dir, backbone, tmp_path_factory):
    where = store_url(tmp_path_factory.mktemp("jobs-api"))
    store = make_store(where, backbone.fingerprint, backbone.d_model, tasks=2)
    store.put_family(Family("other", torch.randn(L, backbone.d_model), backbone.fingerprint))
    alien = dict(backbone.fingerprint, model_id="elsewhere", embedding_sha256="0" * 16)
    store.put_family(Family("alien", torch.randn(L, backbone.d_model), alien))
    with serve(tiny_dir, where, admin_token=TOKEN, **LIMITS) as (url, _):
        yield url, store


def train(url: str, name: str, body: dict | None = None, family: str = "fam") -> httpx.Response:
    """POST the body as JSON with every non-ASCII character escaped (a lone surrogate travels as \\ud800)."""
    content = json.dumps({"examples": OK, "steps": 5} if body is None else body)
    headers = AUTH | {"content-type": "application/json"}
    return httpx.post(f"{url}/tasks/{name}/train", params={"family": family}, content=content, headers=headers)


def error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    return r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("examples", "says"),
    [
        ([OK[0]], "List should have at least 2 items"),
        ([OK[0], {"input": "", "target": "hot"}], "examples[1].input=''"),
        ([OK[0], {"input": "   ", "target": "hot"}], "examples[1].input='   '"),
        ([OK[0], {"input": 5, "target": "hot"}], "examples[1].input=5: Input should be a valid string"),
        ([OK[0], {"input": "a"}], "examples[1].target: Field required"),
        ([OK[0], OK[1], {"input": "fire " * 30, "target": "hot"}], "examples[2].input has 61 tokens; at most 12 ("),
        (
            [OK[0], {"input": "fire", "target": "x\ud800"}],
            "examples[1].target='x\\ud800': Input should be a valid string",
        ),
    ],
)
def test_bad_examples_are_422_naming_the_row(server, examples, says):
    url, _ = server
    assert says in error(train(url, "bad", {"examples": examples}), 422)


def test_bad_dev_rows_options_and_names_are_422(server):
    url, _ = server
    over = {"input": "x", "target": "hot " * 40}
    assert "dev[0].target has 81 tokens; at most 32 (MPT_MAX_JOB_TARGET_TOKENS)" in error(
        train(url, "b", {"examples": OK, "dev": [over]}), 422
    )
    assert "mode=" in error(train(url, "b", {"examples": OK, "mode": "group"}), 422)
    assert "seed=" in error(train(url, "b", {"examples": OK, "seed": -1}), 422)
    assert "extra" in error(train(url, "b", {"examples": OK, "learning_rate": 1}), 422).lower()
    assert "invalid task name" in error(train(url, "Bad Name", {"examples": OK}), 422)
    assert "init task 't1' is not a task of family 'other'" in error(
        train(url, "b", {"examples": OK, "init": "t1"}, family="other"), 422
    )
    assert "task 'nope' does not exist" in error(train(url, "b", {"examples": OK, "init": "nope"}), 404)
    assert "not valid JSON" in error(
        httpx.post(
            f"{url}/tasks/b/train?family=fam", content=b"{", headers=AUTH | {"content-type": "application/json"}
        ),
        422,
    )
    r = httpx.post(f"{url}/tasks/b/train?family=fam", content=b"x", headers=AUTH | {"content-type": "text/plain"})
    error(r, 415)


def test_limits_are_413_and_429_with_retry_after(server):
    url, store = server
    five = {"examples": OK * 2 + [OK[0]]}
    assert "5 examples; at most 4 per job (MPT_MAX_JOB_EXAMPLES)" in error(train(url, "big", five), 413)
    assert "5 dev; at most 4" in error(train(url, "big", {"examples": OK, "dev": OK * 2 + [OK[0]]}), 413)
    assert "steps=51; at most 50 per job (MPT_MAX_JOB_STEPS)" in error(
        train(url, "big", {"examples": OK, "steps": 51}), 413
    )
    for job in store.list_jobs(status="queued"):  # start from no job queued
        store.cancel_job(job.id)
    assert train(url, "a1").status_code == 202 and train(url, "a2").status_code == 202
    r = train(url, "a3")
    assert "family 'fam' has 2 jobs queued or running" in error(r, 429) and "MPT_MAX_FAMILY_JOBS=2" in error(r, 429)
    assert r.headers["retry-after"] == "5"
    assert train(url, "b1", family="other").status_code == 202
    r = train(url, "b2", family="other")
    assert "3 jobs are queued or running" in error(r, 429) and "MPT_MAX_JOBS=3" in error(r, 429)
    first = store.list_jobs(task="a1")[0]
    assert httpx.delete(f"{url}/jobs/{first.id}", headers=AUTH).status_code == 200  # a slot frees up
    assert train(url, "a3").status_code == 202
    for job in store.list_jobs(status="queued"):
        store.cancel_job(job.id)


def test_names_taken_unknown_families_and_other_backbones(server):
    url, store = server
    assert "task 't0' already exists; set overwrite" in error(train(url, "t0"), 409)
    r = train(url, "t0", {"examples": OK, "overwrite": True})
    assert r.status_code == 202
    assert f"job {r.json()['job']} is already training task 't0'" in error(
        train(url, "t0", {"examples": OK, "overwrite": True}), 409
    )
    store.cancel_job(r.json()["job"])
    assert "family 'other' already exists (mode full" in error(
        train(url, "other", {"examples": OK, "mode": "full"}), 409
    )
    assert "family 'nope' does not exist" in error(train(url, "x", family="nope"), 404)
    assert "was trained for backbone 'elsewhere'" in error(train(url, "x", family="alien"), 409)
    assert httpx.post(f"{url}/tasks/x/train", params={"family": "fam"}, json={"examples": OK}).status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert (
        httpx.post(f"{url}/tasks/x/train", params={"family": "fam"}, json={"examples": OK}, headers=bad).status_code
        == 403
    )


def test_jobs_are_described_listed_in_pages_and_404_when_unknown(server):
    url, store = server
    ids = [train(url, f"page{k}", family="other" if k % 2 else "fam").json()["job"] for k in range(2)]
    info = httpx.get(f"{url}/jobs/{ids[0]}").json()
    assert {k: info[k] for k in ("id", "task", "family", "mode", "status", "step", "steps", "examples")} == {
        "id": ids[0],
        "task": "page0",
        "family": "fam",
        "mode": "factors",
        "status": "queued",
        "step": 0,
        "steps": 5,
        "examples": 2,
    }
    assert info["started_at"] is None and info["elapsed_s"] >= 0 and info["created_at"].endswith("+00:00")
    seen, after = [], None
    while True:
        page = httpx.get(f"{url}/jobs", params={"limit": 2} | ({"after": after} if after is not None else {})).json()
        seen += [j["id"] for j in page["jobs"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == sorted(seen) and set(ids) <= set(seen) and len(seen) == len(store.list_jobs())
    assert [j["task"] for j in httpx.get(f"{url}/jobs", params={"task": "page1"}).json()["jobs"]] == ["page1"]
    assert "job 999999 does not exist" in error(httpx.get(f"{url}/jobs/999999"), 404)
    error(httpx.get(f"{url}/jobs/0"), 422)
    error(httpx.get(f"{url}/jobs", params={"status": "done"}), 422)
    error(httpx.get(f"{url}/jobs", params={"task": "Not A Name"}), 422)
    for job in ids:
        store.cancel_job(job)


def test_a_directory_store_has_no_jobs_501(tiny_dir, backbone, tmp_path):
    where = store_url(tmp_path, "directory")
    make_store(where, backbone.fingerprint, backbone.d_model, tasks=1)
    with serve(tiny_dir, where) as (url, _):
        r = httpx.post(f"{url}/tasks/x/train", params={"family": "fam"}, json={"examples": OK})
        assert "training jobs need a database store" in error(r, 501)
        assert r.json()["error"]["code"] == "jobs_unsupported"
        error(httpx.get(f"{url}/jobs"), 501)
