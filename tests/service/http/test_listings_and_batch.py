"""Paginated listings, batch upload, the rank cap and memory that comes back: the real app over a
real store, through HTTP: each test that takes ``server`` runs over a SQLite store and over a
directory store (the listings and the batch rules are the store interface's, not a backend's)."""

import threading

import httpx
import pytest
import torch
from safetensors.torch import save

from mpt_core import Family
from prompts_store import open_store

from ..serving import BACKENDS, L, factors_json, make_store, metric, serve, store_url


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tiny_dir, backbone, tmp_path_factory):
    where = store_url(tmp_path_factory.mktemp("pages"), request.param)
    store = make_store(where, backbone.fingerprint, backbone.d_model, tasks=0)
    store.put_family(Family("other", torch.randn(L, backbone.d_model), backbone.fingerprint))
    with serve(tiny_dir, where, max_rank=4, max_batch_tasks=50) as (url, _app):
        yield url, store, backbone.d_model


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    return r.json()["error"]["message"]


def _batch(names: list[str], d: int, family: str = "fam", seed: int = 0) -> dict:
    return {"tasks": [factors_json(n, d, seed=seed + k, family=family) for k, n in enumerate(names)]}


def test_pages_follow_the_cursor_and_filter_by_family(server):
    url, _, d = server
    names = [f"p{k:03d}" for k in range(30)]
    body = _batch(names[:20], d) | {"tasks": _batch(names[:20], d)["tasks"] + _batch(names[20:], d, "other")["tasks"]}
    assert httpx.post(f"{url}/tasks/batch", json=body).status_code == 201
    seen, after = [], None
    while True:
        page = httpx.get(f"{url}/tasks", params={"limit": 7} | ({"after": after} if after else {})).json()
        assert len(page["tasks"]) <= 7
        seen += [t["name"] for t in page["tasks"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert [n for n in seen if n.startswith("p")] == names and seen == sorted(seen)
    other = httpx.get(f"{url}/tasks", params={"family": "other", "limit": 1000}).json()
    assert [t["name"] for t in other["tasks"]] == names[20:] and other["next"] is None
    paged = httpx.get(f"{url}/tasks", params={"family": "other", "after": "p025", "limit": 2}).json()
    assert [t["name"] for t in paged["tasks"]] == ["p026", "p027"] and paged["next"] == "p027", paged
    assert httpx.get(f"{url}/tasks").json()["next"] is None  # default limit 100 > what is there
    _error(httpx.get(f"{url}/tasks", params={"limit": 1001}), 422)
    _error(httpx.get(f"{url}/tasks", params={"limit": 0}), 422)
    assert "'nope'" in _error(httpx.get(f"{url}/tasks", params={"family": "nope"}), 404)
    _error(httpx.get(f"{url}/tasks", params={"after": "Not A Name"}), 422)
    fams = httpx.get(f"{url}/families", params={"limit": 1}).json()
    assert [f["name"] for f in fams["families"]] == ["fam"] and fams["next"] == "fam"
    rest = httpx.get(f"{url}/families", params={"after": "fam"}).json()
    assert [(f["name"], f["tasks"]) for f in rest["families"]] == [("other", 10)] and rest["next"] is None


def test_batch_upload_is_all_or_nothing_and_names_the_bad_task(server):
    url, store, d = server
    head = store.head()
    good = _batch(["b-ok-0", "b-ok-1"], d, seed=10)["tasks"]
    nan = factors_json("b-nan", d, seed=12) | {"u": [1.0, float("nan"), 1.0, 1.0]}
    r = httpx.post(f"{url}/tasks/batch", content=_json({"tasks": [*good, nan]}), headers=_JSON)
    assert "'b-nan'" in _error(r, 422)
    short = factors_json("b-short", d, seed=13) | {"v": [1.0] * (d - 1)}
    assert "'b-short'" in _error(httpx.post(f"{url}/tasks/batch", json={"tasks": [*good, short]}), 422)
    bad_name = factors_json("Bad Name", d, seed=14)
    assert "'Bad Name'" in _error(httpx.post(f"{url}/tasks/batch", json={"tasks": [*good, bad_name]}), 422)
    missing_v = {k: v for k, v in factors_json("b-no-v", d, seed=15).items() if k != "v"}
    assert "'b-no-v'" in _error(httpx.post(f"{url}/tasks/batch", json={"tasks": [*good, missing_v]}), 422)
    orphan = factors_json("b-orphan", d, seed=16, family="nofam")
    assert "'b-orphan'" in _error(httpx.post(f"{url}/tasks/batch", json={"tasks": [*good, orphan]}), 404)
    twice = httpx.post(f"{url}/tasks/batch", json={"tasks": [*good, good[0]]})
    assert "more than once" in _error(twice, 422)
    assert store.head() == head and not store.has_task("b-ok-0")  # nothing was written
    assert httpx.get(f"{url}/tasks/b-ok-0").status_code == 404

    created = httpx.post(f"{url}/tasks/batch", json={"tasks": good})
    assert created.status_code == 201 and created.json() == {"count": 2, "sequence": head + 2}
    p = httpx.post(f"{url}/predict", params={"task": "b-ok-1"}, json={"inputs": "x", "candidates": ["a", "b"]})
    assert p.status_code == 200  # served once written
    clash = _batch(["b-new", "b-ok-1"], d, seed=20)
    assert "'b-ok-1'" in _error(httpx.post(f"{url}/tasks/batch", json=clash), 409)
    assert not store.has_task("b-new")
    replaced = httpx.post(f"{url}/tasks/batch", params={"overwrite": "true"}, json=clash)
    assert replaced.status_code == 201 and replaced.json()["count"] == 2
    assert torch.equal(store.get_task("b-ok-1").u.flatten(), torch.tensor(clash["tasks"][1]["u"]))
    too_many = _batch([f"m{k}" for k in range(51)], d)
    assert "at most 50" in _error(httpx.post(f"{url}/tasks/batch", json=too_many), 413)


def test_batch_upload_as_safetensors(server):
    url, store, d = server
    n, r = 3, 2
    u, v = torch.randn(n, L, r), torch.randn(n, d, r).to(torch.bfloat16)
    names = ["st-0", "st-1", "st-2"]
    meta = {"names": _json(names).decode(), "family": "fam", "source": "bulk"}
    body = save({"u": u, "v": v}, metadata=meta)
    r1 = httpx.post(f"{url}/tasks/batch", content=body, headers={"content-type": "application/octet-stream"})
    assert r1.status_code == 201 and r1.json()["count"] == 3
    info = httpx.get(f"{url}/tasks/st-2").json()
    assert (info["rank"], info["source"]) == (2, "bulk")
    assert torch.equal(store.get_task("st-1").u, u[1])
    wrong = save({"u": u, "v": v}, metadata={"names": _json(names[:2]).decode(), "family": "fam"})
    r2 = httpx.post(f"{url}/tasks/batch", content=wrong, headers={"content-type": "application/octet-stream"})
    assert "'names'" in _error(r2, 422)


@pytest.mark.parametrize("kind", ["json", "safetensors"])
def test_a_batch_body_is_decoded_off_the_event_loop(server, monkeypatch, kind):
    """The decoder is held at its first step until ``/health/live`` has answered: decoded on the
    event loop (as it was), the probe could not be answered until the hold gave up, 10 s later."""
    from service.http import uploads

    url, store, d = server
    entered, release = threading.Event(), threading.Event()

    def held(real):
        def step(*args, **kwargs):
            entered.set()
            release.wait(10)
            return real(*args, **kwargs)

        return step

    names = [f"loop-{kind}-{k}" for k in range(3)]
    if kind == "json":
        monkeypatch.setattr(uploads, "_tensor", held(uploads._tensor))
        body, media = _json(_batch(names, d, seed=30)), "application/json"
    else:
        monkeypatch.setattr(uploads, "read_safetensors", held(uploads.read_safetensors))
        meta = {"names": _json(names).decode(), "family": "fam"}
        body, media = save({"u": torch.randn(3, L, 1), "v": torch.randn(3, d, 1)}, metadata=meta), _OCTETS
    answers: list[httpx.Response] = []
    upload = threading.Thread(
        target=lambda: answers.append(
            httpx.post(f"{url}/tasks/batch", content=body, headers={"content-type": media}, timeout=30)
        )
    )
    upload.start()
    try:
        assert entered.wait(10), "the upload never reached the decoder"
        try:
            live = httpx.get(f"{url}/health/live", timeout=5).status_code
        except httpx.TimeoutException:
            live = None
    finally:
        release.set()
        upload.join()
    assert live == 200, "/health/live did not answer while a batch body was decoded"
    assert answers[0].status_code == 201, answers[0].text
    assert all(store.has_task(n) for n in names)


def test_rank_over_the_cap_is_413_and_the_widest_task_returns_its_memory(server):
    url, store, d = server
    wide = {"name": "wide", "family": "fam", "u": torch.randn(L, 5).tolist(), "v": torch.randn(d, 5).tolist()}
    assert "MPT_MAX_RANK=4" in _error(httpx.post(f"{url}/tasks", json=wide), 413)
    assert "'wide'" in _error(httpx.post(f"{url}/tasks/batch", json={"tasks": [wide]}), 413)
    assert not store.has_task("wide")
    before = metric(url, "mpt_prompt_table_bytes")
    widest = wide | {"u": torch.randn(L, 4).tolist(), "v": torch.randn(d, 4).tolist()}
    assert httpx.put(f"{url}/tasks/wide", json=widest).status_code == 201
    grown = metric(url, "mpt_prompt_table_bytes")
    assert grown >= before + 16 * (L + d) * 4 * 4  # a class of its own (16 slots of rank 4), not every slot widened
    assert httpx.delete(f"{url}/tasks/wide").status_code == 204
    assert metric(url, "mpt_prompt_table_bytes") == before


_JSON = {"content-type": "application/json"}
_OCTETS = "application/octet-stream"


def _json(value) -> bytes:
    import json

    return json.dumps(value).encode()  # allow_nan: NaN reaches the server as the literal NaN


def test_store_url_setting_is_checked_at_the_edge():
    from pydantic import ValidationError

    from service.settings import Settings

    with pytest.raises(ValidationError, match="mysql"):
        Settings(store="mysql://x/y")
    assert Settings().store.startswith("sqlite:///")
    assert open_store  # the default backend opens through the same function as every other
