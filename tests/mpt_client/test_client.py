"""The Python client (sync and async) against the real server on the tiny T5: every call, its errors
as one exception type with the server's status/code/message/Retry-After, and reading a local store."""

from __future__ import annotations

import asyncio

import pytest
import torch

from mpt_client import AsyncClient, Client, MptError
from mpt_client.calls import task_json
from mpt_core import Family, Task
from prompts_store import family_to_bytes, open_store, task_to_bytes
from tests.service.serving import L, factors_json, make_store, serve

TOKEN = "client-test-token"


@pytest.fixture(scope="module")
def server(tiny_dir, backbone, tmp_path_factory):
    root = tmp_path_factory.mktemp("client")
    make_store(root / "store", backbone.fingerprint, backbone.d_model, tasks=5)
    with serve(tiny_dir, root / "store", admin_token=TOKEN, max_new_tokens=8) as (url, _):
        yield url, backbone


@pytest.fixture
def client(server):
    with Client(server[0], token=TOKEN) as c:
        yield c


def test_predict_one_many_and_candidates(client):
    one = client.predict("t0", "big or small : the ocean", max_new_tokens=4)
    many = client.predict("t0", ["big or small : the ocean", "hot or cold : ice"], max_new_tokens=4)
    assert one["task"] == "t0" and len(one["outputs"]) == 1 and many["outputs"][0] == one["outputs"][0]
    scored = client.predict("t1", ["hot or cold : fire"], candidates=["hot", "cold"])
    assert len(scored["scores"][0]) == 2 and scored["outputs"][0] in ("hot", "cold")


def test_errors_are_one_type_with_the_servers_code_and_message(client, server):
    with pytest.raises(MptError) as err:
        client.predict("nope", "x")
    e = err.value
    assert (e.status, e.code) == (404, "not_found") and "nope" in e.message and e.replica
    with pytest.raises(MptError) as err:
        client.predict("t0", "x", max_new_tokens=99)
    assert err.value.status == 413
    with Client(server[0]) as anonymous, pytest.raises(MptError) as err:
        anonymous.delete_task("t0")
    assert (err.value.status, err.value.code) == (401, "unauthorized")
    with Client(server[0], token="wrong") as wrong, pytest.raises(MptError) as err:
        wrong.delete_task("t0")
    assert (err.value.status, err.value.code) == (403, "forbidden")


def test_an_unreachable_server_is_the_same_exception():
    with Client("http://127.0.0.1:9", timeout=2) as c, pytest.raises(MptError) as err:
        c.get_task("t0")
    assert err.value.status is None and err.value.code == "unreachable"
    assert not Client("http://127.0.0.1:9", timeout=2).ready()


def test_task_listing_pages_to_the_end(client):
    names = [t["name"] for t in client.tasks()]
    assert names == sorted(names) and {"t0", "t1", "t2", "t3", "t4"} <= set(names)
    assert [t["name"] for t in client.tasks(page_size=2)] == names
    assert client.get_task("t1")["rank"] == 2
    assert client.tasks_page(limit=2)["tasks"][0]["name"] == names[0]


def test_task_listing_follows_next_when_the_server_paginates(client):
    page = client.tasks_page(limit=2)
    assert len(page["tasks"]) == 2 and page["next"] is not None  # the server pages: the client must follow
    names = [t["name"] for t in client.tasks(page_size=2)]
    assert names == sorted(names) and len(names) >= 5 and page["next"] == names[1]
    assert [t["name"] for t in client.tasks(family="fam", page_size=2)] == names


def test_upload_json_tensors_bytes_replace_and_delete(client, server):
    _, backbone = server
    d = backbone.d_model
    body = factors_json("cj", d, seed=3)
    made = client.upload_task("cj", "fam", body["u"], body["v"], source="client-test")
    assert made["name"] == "cj" and made["rank"] == 1 and made["source"] == "client-test"
    assert client.predict("cj", "x", max_new_tokens=2)["task"] == "cj"
    with pytest.raises(MptError) as err:
        client.upload_task("cj", "fam", body["u"], body["v"])
    assert (err.value.status, err.value.code) == (409, "conflict")

    rank2 = client.upload_task("cj", "fam", torch.randn(L, 2), torch.randn(d, 2), replace=True)
    assert rank2["rank"] == 2
    task = Task("cb", "fam", torch.randn(L, 1), torch.randn(d, 1))
    assert client.upload_task_bytes(task_to_bytes(task))["name"] == "cb"
    again = client.upload_task_bytes(task_to_bytes(task), name="cb", replace=True)
    assert again["name"] == "cb"
    with pytest.raises(MptError) as err:
        client.upload_task("bad", "fam", [1.0] * (L + 1), body["v"])  # one number too many
    assert (err.value.status, err.value.code) == (422, "invalid_artifact")

    for name in ("cj", "cb"):
        client.delete_task(name)
        with pytest.raises(MptError) as err:
            client.get_task(name)
        assert err.value.status == 404


def test_push_a_task_from_a_local_store(client, server, tmp_path):
    _, backbone = server
    local = open_store(f"sqlite:///{tmp_path / 'local.db'}")
    local.put_family(Family("fam", torch.randn(L, backbone.d_model), backbone.fingerprint))
    local.put_task(Task("trained", "fam", torch.randn(L, 1), torch.randn(backbone.d_model, 1), source="run-7"))
    local.close()
    pushed = client.push_task(f"sqlite:///{tmp_path / 'local.db'}", "trained", as_name="pushed")
    assert pushed["name"] == "pushed" and pushed["source"] == "run-7"
    assert client.predict("pushed", "x", max_new_tokens=2)["outputs"]
    client.delete_task("pushed")


def test_batch_upload_all_or_nothing(client, server):
    _, backbone = server
    good = [task_json(f"b{i}", "fam", torch.randn(L), torch.randn(backbone.d_model)) for i in range(3)]
    out = client.upload_tasks(good)
    assert out["count"] == 3 and out["sequence"] > 0
    assert all(client.get_task(f"b{i}")["name"] == f"b{i}" for i in range(3))
    bad = [
        task_json("b9", "fam", torch.randn(L), torch.randn(backbone.d_model)),
        task_json("b0", "ghost", [1.0], [1.0]),
    ]
    with pytest.raises(MptError) as err:
        client.upload_tasks(bad)
    assert (err.value.status, err.value.code) == (404, "not_found") and "'b0'" in err.value.message
    with pytest.raises(MptError):
        client.get_task("b9")  # nothing of the failed batch was written


def test_families_list_get_upload_delete(client, server):
    _, backbone = server
    assert [f["name"] for f in client.families()] == ["fam"]
    assert client.get_family("fam")["tasks"] >= 5
    made = client.upload_family("cfam", torch.randn(L, backbone.d_model), source="client-test")
    assert made["name"] == "cfam" and made["model_id"] == backbone.fingerprint["model_id"]
    raw = Family("cfam2", torch.randn(L, backbone.d_model), backbone.fingerprint)
    assert client.upload_family_bytes(family_to_bytes(raw))["name"] == "cfam2"
    with pytest.raises(MptError) as err:
        client.upload_family("cfam", torch.randn(L, backbone.d_model))
    assert err.value.status == 409
    assert [f["name"] for f in client.families()] == ["cfam", "cfam2", "fam"]
    client.delete_family("cfam")
    client.delete_family("cfam2")
    with pytest.raises(MptError) as err:
        client.delete_family("fam")  # still used
    assert (err.value.status, err.value.code) == (409, "conflict")


def test_the_async_client_makes_the_same_calls(server):
    url, backbone = server

    async def go():
        async with AsyncClient(url, token=TOKEN) as c:
            out = await c.predict("t0", "big or small : the ocean", max_new_tokens=4)
            names = [t["name"] async for t in c.tasks(page_size=2)]
            fams = [f["name"] async for f in c.families()]
            await c.upload_task("async1", "fam", torch.randn(L), torch.randn(backbone.d_model))
            info = await c.get_task("async1")
            await c.delete_task("async1")
            try:
                await c.get_task("async1")
            except MptError as e:
                missing = (e.status, e.code)
            return out, names, fams, info, missing, await c.ready()

    out, names, fams, info, missing, ready = asyncio.run(go())
    assert out["task"] == "t0" and "t0" in names and names == sorted(names) and fams == ["fam"]
    assert info["name"] == "async1" and missing == (404, "not_found") and ready


def test_retry_after_reaches_the_caller(tiny_dir, backbone, tmp_path):
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=1)
    with serve(tiny_dir, tmp_path / "s") as (url, app):
        app.state.service.begin_drain()  # what SIGTERM does: new predictions get 503 + Retry-After
        with Client(url) as c:
            with pytest.raises(MptError) as err:
                c.predict("t0", "x")
            assert err.value.status == 503 and err.value.retry_after == 1.0
            assert not c.ready()
