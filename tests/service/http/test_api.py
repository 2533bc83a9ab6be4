"""Every endpoint's success path and each error status, on the real app over a real store (each
test that takes ``server`` runs over a SQLite store and over a directory store: the API is the same)."""

import httpx
import pytest
import torch
from safetensors.torch import save

from mpt_core import Family, Task
from prompts_store import family_to_bytes, task_to_bytes

from ..serving import BACKENDS, L, factors_json, make_store, metric, serve, store_url


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tiny_dir, backbone, tmp_path_factory):
    store = store_url(tmp_path_factory.mktemp("api"), request.param)
    make_store(store, backbone.fingerprint, backbone.d_model).close()
    with serve(tiny_dir, store, max_inputs=4, max_input_tokens=24, max_new_tokens=8, max_body_bytes=64 * 1024) as (
        url,
        app,
    ):
        yield url, app, backbone.d_model


def test_predict_post_get_and_candidates(server):
    url, _, _ = server
    one = httpx.post(
        f"{url}/predict", params={"task": "t0"}, json={"inputs": "big or small : the ocean", "max_new_tokens": 5}
    )
    assert one.status_code == 200
    body = one.json()
    assert (
        body["task"] == "t0"
        and len(body["outputs"]) == 1
        and isinstance(body["outputs"][0], str)
        and "scores" not in body
    )
    many = httpx.post(
        f"{url}/predict?task=t0", json={"inputs": ["big or small : the ocean", "a second input"], "max_new_tokens": 5}
    )
    assert many.json()["outputs"][0] == body["outputs"][0]
    got = httpx.get(f"{url}/predict", params={"task": "t0", "input": "big or small : the ocean", "max_new_tokens": 5})
    assert got.status_code == 200 and got.json()["outputs"] == body["outputs"]
    scored = httpx.post(
        f"{url}/predict?task=t1", json={"inputs": ["hot or cold : fire"], "candidates": ["hot", "cold", "warm"]}
    )
    s = scored.json()
    assert scored.status_code == 200 and len(s["scores"][0]) == 3 and all(v < 0 for v in s["scores"][0])
    assert s["outputs"][0] == ["hot", "cold", "warm"][max(range(3), key=s["scores"][0].__getitem__)]
    g = httpx.get(
        f"{url}/predict",
        params=[
            ("task", "t1"),
            ("input", "hot or cold : fire"),
            ("candidate", "hot"),
            ("candidate", "cold"),
            ("candidate", "warm"),
        ],
    )
    assert g.json()["scores"][0] == pytest.approx(s["scores"][0], abs=1e-5)


def test_task_listing_and_description(server):
    url, _, d = server
    tasks = httpx.get(f"{url}/tasks").json()["tasks"]
    assert [t["name"] for t in tasks][:4] == ["t0", "t1", "t2", "t3"]
    info = httpx.get(f"{url}/tasks/t1").json()
    assert info == info | {"name": "t1", "family": "fam", "rank": 2, "l": L, "d": d, "parameters": (L + d) * 2}
    fams = httpx.get(f"{url}/families").json()["families"]
    assert fams[0]["name"] == "fam" and fams[0]["l"] == L and fams[0]["tasks"] >= 4
    assert httpx.get(f"{url}/families/fam").json()["d"] == d
    assert httpx.get(f"{url}/health/live").json() == {"status": "alive"}
    assert httpx.get(f"{url}/health/ready").json()["status"] == "ready"
    assert httpx.get(f"{url}/docs").status_code == 200
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    assert {"/predict", "/tasks", "/tasks/{name}", "/families", "/health/ready", "/metrics"} <= set(paths)


def test_task_upload_replace_delete_json_and_safetensors(server):
    url, _, d = server
    created = httpx.post(f"{url}/tasks", json=factors_json("new-task", d, seed=1))
    assert created.status_code == 201 and created.json()["rank"] == 1
    first = httpx.post(f"{url}/predict?task=new-task", json={"inputs": "x y z", "candidates": ["a", "b"]}).json()[
        "scores"
    ]
    assert httpx.post(f"{url}/tasks", json=factors_json("new-task", d, seed=1)).status_code == 409
    replaced = httpx.put(f"{url}/tasks/new-task", json=factors_json("new-task", d, seed=2))
    assert replaced.status_code == 200
    second = httpx.post(f"{url}/predict?task=new-task", json={"inputs": "x y z", "candidates": ["a", "b"]}).json()[
        "scores"
    ]
    assert second != first  # the very next request uses the new factors
    task = Task("st-task", "fam", torch.randn(L, 2), torch.randn(d, 2))
    up = httpx.put(
        f"{url}/tasks/st-task", content=task_to_bytes(task), headers={"content-type": "application/octet-stream"}
    )
    assert up.status_code == 201 and up.json()["rank"] == 2
    raw = save({"u": torch.randn(L, 1), "v": torch.randn(d, 1).to(torch.bfloat16)}, metadata={"family": "fam"})
    assert (
        httpx.post(
            f"{url}/tasks?name=raw-st", content=raw, headers={"content-type": "application/x-safetensors"}
        ).status_code
        == 201
    )
    assert httpx.delete(f"{url}/tasks/new-task").status_code == 204
    gone = httpx.post(f"{url}/predict?task=new-task", json={"inputs": "x"})
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert httpx.delete(f"{url}/tasks/new-task").status_code == 404


def test_family_upload_json_and_safetensors(server, backbone):
    url, _, d = server
    shared = torch.randn(3, d)
    r = httpx.post(f"{url}/families", json={"name": "fam-json", "shared": shared.tolist()})
    assert r.status_code == 201 and r.json()["l"] == 3
    fam = Family("fam-st", torch.randn(5, d), backbone.fingerprint)
    r = httpx.post(
        f"{url}/families", content=family_to_bytes(fam), headers={"content-type": "application/octet-stream"}
    )
    assert r.status_code == 201 and r.json()["l"] == 5
    # a task of the new family (l = 5) is served in the same process, next to l = 4 tasks
    assert httpx.post(f"{url}/tasks", json=factors_json("five", d, seed=3, family="fam-st", l=5)).status_code == 201
    assert httpx.post(f"{url}/predict?task=five", json={"inputs": "a"}).status_code == 200
    assert httpx.delete(f"{url}/families/fam-st").status_code == 409  # still used by 'five'
    assert httpx.delete(f"{url}/tasks/five").status_code == 204
    assert httpx.delete(f"{url}/families/fam-st").status_code == 204


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"code", "message"} and err["message"]
    return err["message"]


def test_errors_a_user_could_really_cause(server, backbone):
    url, _, d = server
    p = f"{url}/predict"
    assert "'missing'" in _error(httpx.post(f"{p}?task=missing", json={"inputs": "x"}), 404)
    bad_u = factors_json("bad", d, seed=1) | {"u": [1.0] * (L + 1)}
    assert "l=4" in _error(httpx.post(f"{url}/tasks", json=bad_u), 422)
    bad_v = factors_json("bad", d, seed=1) | {"v": [1.0] * (d - 1)}
    assert f"d={d}" in _error(httpx.post(f"{url}/tasks", json=bad_v), 422)
    for literal in ("NaN", "Infinity", "-Infinity"):
        body = f'{{"name": "bad", "family": "fam", "u": [1, 2, {literal}, 4], "v": {[1.0] * d}}}'
        msg = _error(httpx.post(f"{url}/tasks", content=body, headers={"content-type": "application/json"}), 422)
        assert "non-finite" in msg or "finite" in msg.lower() or "invalid" in msg.lower()
    assert "'../etc/passwd'" in _error(httpx.post(f"{url}/tasks", json=factors_json("../etc/passwd", d, 1)), 422)
    assert "invalid task name" in _error(httpx.post(f"{p}?task=Bad%20Name", json={"inputs": "x"}), 422)
    _error(httpx.post(f"{url}/tasks", json=factors_json("orphan", d, 1, family="nofam")), 404)
    _error(httpx.post(f"{url}/tasks", content=b"u,v", headers={"content-type": "text/csv"}), 415)
    _error(
        httpx.post(f"{url}/tasks", content=b"not safetensors", headers={"content-type": "application/octet-stream"}),
        422,
    )
    _error(httpx.post(p, params={"task": "t0"}, json={"inputs": []}), 422)
    _error(httpx.post(p, params={"task": "t0"}, json={"wrong": "x"}), 422)
    # limits: body size, input count, input tokens, max_new_tokens
    big = {"name": "big", "family": "fam", "u": [0.5] * 20000, "v": [0.5] * d}
    assert "bytes" in _error(httpx.post(f"{url}/tasks", json=big), 413)
    assert "at most 4" in _error(httpx.post(f"{p}?task=t0", json={"inputs": ["a"] * 5}), 413)
    assert "limit is 24" in _error(httpx.post(f"{p}?task=t0", json={"inputs": ["word " * 40]}), 413)
    _error(httpx.post(f"{p}?task=t0", json={"inputs": "a", "max_new_tokens": 9}), 413)
    # a family trained for another backbone
    other = dict(backbone.fingerprint, embedding_sha256="0" * 16, model_id="other-t5")
    fam = Family("alien", torch.randn(L, d), other)
    r = httpx.post(
        f"{url}/families", content=family_to_bytes(fam), headers={"content-type": "application/octet-stream"}
    )
    assert "other-t5" in _error(r, 409)
    assert metric(url, "mpt_errors_total") >= 10


def test_admin_token_guards_mutations(tiny_dir, backbone, tmp_path):
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=1)
    with serve(tiny_dir, tmp_path / "s", admin_token="s3cret") as (url, _):
        body = factors_json("guarded", backbone.d_model, seed=1)
        r = httpx.post(f"{url}/tasks", json=body)
        _error(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"
        _error(httpx.post(f"{url}/tasks", json=body, headers={"authorization": "Bearer wrong"}), 403)
        _error(httpx.delete(f"{url}/tasks/t0", headers={"authorization": "Bearer wrong"}), 403)
        _error(httpx.post(f"{url}/families", json={"name": "f2", "shared": [[0.0] * backbone.d_model]}), 401)
        ok = httpx.post(f"{url}/tasks", json=body, headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 201
        assert httpx.post(f"{url}/predict?task=guarded", json={"inputs": "x"}).status_code == 200  # reads stay open


def test_full_queue_answers_503_with_retry_after(tiny_dir, backbone, tmp_path):
    import asyncio

    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=1)
    # a batch waits up to 1.5 s to fill; the queue holds 2 rows: the third row is refused at once
    with serve(tiny_dir, tmp_path / "s", max_queue=2, max_inputs=2, max_batch=64, max_wait_ms=1500) as (url, _):

        async def burst():
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                first = [asyncio.create_task(c.post("/predict?task=t0", json={"inputs": "a"})) for _ in range(2)]
                await asyncio.sleep(0.4)  # both rows are queued, waiting for the batch to fill
                third = await c.post("/predict?task=t0", json={"inputs": "b"})
                return third, await asyncio.gather(*first)

        third, first = asyncio.run(burst())
        _error(third, 503)
        assert third.headers["retry-after"] == "1"
        assert [r.status_code for r in first] == [200, 200]


def test_expired_deadline_answers_504(tiny_dir, backbone, tmp_path):
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=1)
    with serve(tiny_dir, tmp_path / "s", request_timeout_s=0.3, max_batch=64, max_wait_ms=2000) as (url, _):
        r = httpx.post(f"{url}/predict?task=t0", json={"inputs": "a"}, timeout=10)
        assert "0.3s" in _error(r, 504)


def test_exposed_host_without_token_warns_loudly(caplog):
    from service.http.app import warn_if_exposed
    from service.settings import Settings

    warn_if_exposed(Settings(host="0.0.0.0"))
    assert "MPT_ADMIN_TOKEN" in caplog.text and "0.0.0.0" in caplog.text
    caplog.clear()
    warn_if_exposed(Settings(host="0.0.0.0", admin_token="x"))
    warn_if_exposed(Settings(host="127.0.0.1"))
    assert caplog.text == ""


def test_settings_are_validated_with_the_bad_value_named(monkeypatch, capsys):
    from service.__main__ import main

    assert main(["--max-batch", "0"]) == 2
    assert "max_batch='0'" in capsys.readouterr().err
    monkeypatch.setenv("MPT_MAX_WAIT_MS", "-5")
    assert main([]) == 2
    assert "max_wait_ms='-5'" in capsys.readouterr().err
