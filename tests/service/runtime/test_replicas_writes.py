"""Two servers on one store: a write through one server is answered by what the STORE decides,
whatever the other server's writes that this one has not polled yet. A write the store made durable
is never answered with an error, and a write the store takes is never refused from a stale table."""

import httpx
import pytest
import torch

from mpt_core import Family, Task
from prompts_store import open_store
from service.runtime.metrics import Metrics
from service.runtime.mutations import Mutations
from service.runtime.store_sync import StoreSync
from service.table.prompt_table import PromptTable

from ..serving import factors_json, serve, store_url


@pytest.fixture(scope="module")
def pair(tiny_dir, backbone, tmp_path_factory):
    """Servers A and B on one SQLite store; B does not poll during a test (only when a write needs it)."""
    url = store_url(tmp_path_factory.mktemp("pair"), "sqlite")
    open_store(url).close()
    with serve(tiny_dir, url, store_poll_s=600) as (a, _), serve(tiny_dir, url, store_poll_s=600) as (b, app_b):
        yield a, b, app_b, backbone, url


def _family(name: str, l: int, backbone) -> dict:
    return {"name": name, "shared": torch.ones(l, backbone.d_model).tolist(), "fingerprint": backbone.fingerprint}


def test_deleting_a_family_whose_last_task_went_through_the_other_server(pair):
    a, b, app_b, backbone, _ = pair
    assert httpx.post(f"{a}/families", json=_family("fd", 4, backbone)).status_code == 201
    assert httpx.post(f"{a}/tasks", json=factors_json("fd-t", backbone.d_model, 1, family="fd")).status_code == 201
    app_b.state.service.state.sync.poll()  # B learns both
    assert httpx.get(f"{b}/tasks/fd-t").status_code == 200
    assert httpx.delete(f"{a}/tasks/fd-t").status_code == 204
    gone = httpx.delete(f"{b}/families/fd")  # B still serves fd-t: the store decides, and deletes the family
    assert gone.status_code == 204, gone.text
    assert httpx.get(f"{b}/families/fd").status_code == 404
    assert httpx.get(f"{b}/tasks/fd-t").status_code == 404


def test_a_task_into_a_family_created_through_the_other_server(pair):
    a, b, _, backbone, _ = pair
    assert httpx.post(f"{a}/families", json=_family("fnew", 4, backbone)).status_code == 201
    put = httpx.put(f"{b}/tasks/fnew-t", json=factors_json("fnew-t", backbone.d_model, 2, family="fnew"))
    assert put.status_code == 201, put.text
    created = httpx.post(f"{b}/tasks", json=factors_json("fnew-u", backbone.d_model, 3, family="fnew"))
    assert created.status_code == 201, created.text
    assert httpx.post(f"{b}/predict", params={"task": "fnew-t"}, json={"inputs": "x"}).status_code == 200
    missing = httpx.put(f"{b}/tasks/nofam-t", json=factors_json("nofam-t", backbone.d_model, 2, family="nofam"))
    assert missing.status_code == 404 and "nofam" in missing.json()["error"]["message"]


def test_a_task_into_a_family_reshaped_through_the_other_server(pair):
    a, b, _, backbone, _ = pair
    d = backbone.d_model
    assert httpx.post(f"{a}/families", json=_family("fr", 4, backbone)).status_code == 201
    assert httpx.put(f"{b}/tasks/fr-t", json=factors_json("fr-t", d, 1, family="fr")).status_code == 201
    assert httpx.delete(f"{a}/tasks/fr-t").status_code == 204
    assert httpx.delete(f"{a}/families/fr").status_code == 204
    assert httpx.post(f"{a}/families", json=_family("fr", 8, backbone)).status_code == 201
    # B serves fr with l=4 still; the store has l=8: the store's shape rule decides
    put = httpx.put(f"{b}/tasks/fr-t", json=factors_json("fr-t", d, 2, family="fr", l=8))
    assert put.status_code == 201, put.text
    assert httpx.get(f"{b}/tasks/fr-t").json()["l"] == 8
    wrong = httpx.put(f"{b}/tasks/fr-u", json=factors_json("fr-u", d, 2, family="fr", l=4))
    assert wrong.status_code == 422, wrong.text


def test_a_committed_write_is_answered_success_whatever_the_table_refuses(backbone, tmp_path):
    """The reviewer's scenario at the mutation level: B's table still has t1 (deleted through A)."""
    fp, d = backbone.fingerprint, backbone.d_model
    url = store_url(tmp_path, "sqlite")

    def server():
        store = open_store(url)
        m = Mutations(store, PromptTable(d, torch.device("cpu")), fp, Metrics())
        return m, StoreSync(store, m, m.metrics)

    (a, sa), (b, sb) = server(), server()
    a.store.put_family(Family("fam", torch.ones(4, d), fp))
    a.store.put_task(Task("t1", "fam", torch.ones(4, 1), torch.ones(d, 1)))
    sa.load()
    sb.load()
    a._delete_task("t1")
    b._delete_family("fam")  # the store deletes it: no error
    assert not a.store.has_family("fam")
    assert "fam" not in b.table.families and not b.table.has_task("t1")


def test_a_task_into_a_family_of_another_backbone_is_409_and_not_written(pair):
    _, b, _, backbone, url = pair
    alien = dict(backbone.fingerprint, model_id="other-t5", embedding_sha256="0" * 16)
    writer = open_store(url)
    writer.put_family(Family("alien", torch.ones(4, backbone.d_model), alien))  # another backbone's server
    put = httpx.put(f"{b}/tasks/alien-t", json=factors_json("alien-t", backbone.d_model, 1, family="alien"))
    assert put.status_code == 409 and "other-t5" in put.json()["error"]["message"]
    assert not writer.has_task("alien-t")
    paths = httpx.get(f"{b}/openapi.json").json()["paths"]
    assert "409" in paths["/tasks/{name}"]["put"]["responses"]
