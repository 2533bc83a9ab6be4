"""A family re-created with another prompt length while a replica was not looking: the change feed
carries only the latest state of each name (``fam put``, ``t put``), never the deletions between.
The replica must end serving the new family and the new task (the store forbids reshaping a family
that has tasks, so a task it still holds in the old shape is stale), through the feed and a reload."""

import time

import httpx
import pytest
import torch

from mpt_core import Family, Task
from prompts_store import open_store
from service.runtime.metrics import Metrics
from service.runtime.mutations import Mutations
from service.runtime.store_sync import StoreSync
from service.table.prompt_table import PromptTable

from ..serving import BACKENDS, serve, store_url


def _replica(url: str, backbone) -> StoreSync:
    table = PromptTable(backbone.d_model, torch.device("cpu"))
    mutations = Mutations(open_store(url), table, backbone.fingerprint, Metrics())
    sync = StoreSync(mutations.store, mutations, mutations.metrics)
    sync.load()
    return sync


def _reshape(writer, backbone, l_new: int) -> None:
    """What another process does: delete t and fam, re-create fam with length l_new and t in it."""
    d = backbone.d_model
    writer.delete_task("t")
    writer.delete_family("fam")
    writer.put_family(Family("fam", torch.ones(l_new, d), backbone.fingerprint))
    writer.put_task(Task("t", "fam", torch.full((l_new, 1), 2.0), torch.ones(d, 1)))


def _seed(url: str, backbone):
    d = backbone.d_model
    writer = open_store(url)
    writer.put_family(Family("fam", torch.ones(4, d), backbone.fingerprint))
    writer.put_task(Task("t", "fam", torch.ones(4, 1), torch.ones(d, 1)))
    writer.put_task(Task("keep", "fam", torch.ones(4, 1), torch.ones(d, 1)))
    return writer


def _assert_serves_the_new_shape(table: PromptTable, l_new: int) -> None:
    assert table.family("fam").length == l_new
    assert table.has_task("t") and table.task("t").length == l_new
    assert table.compose(["t"]).shape == (1, l_new, table.d)
    assert not table.has_task("keep")  # deleted with the old family (the feed shows its deletion)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_feed_applies_a_reshaped_family_and_its_new_task(backbone, tmp_path, backend):
    url = store_url(tmp_path, backend)
    writer = _seed(url, backbone)
    sync = _replica(url, backbone)
    writer.delete_task("keep")
    _reshape(writer, backbone, 16)
    sync.poll()
    assert sync.since == writer.head()
    _assert_serves_the_new_shape(sync.table, 16)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_reload_applies_a_reshaped_family_and_its_new_task(backbone, tmp_path, backend):
    url = store_url(tmp_path, backend)
    writer = _seed(url, backbone)
    sync = _replica(url, backbone)
    writer.delete_task("keep")
    _reshape(writer, backbone, 16)
    sync.reload()  # what the sync does when the feed cannot answer
    _assert_serves_the_new_shape(sync.table, 16)


def test_a_task_written_after_the_reshape_is_kept(backbone):
    """Only tasks held at a sequence below the family's go: a newer one cannot be in the old shape."""
    d = backbone.d_model
    table = PromptTable(d, torch.device("cpu"))
    table.put_family(Family("fam", torch.ones(4, d), backbone.fingerprint), seq=1)
    table.put_task(Task("old", "fam", torch.ones(4, 1), torch.ones(d, 1)), seq=2)
    assert table.put_family(Family("fam", torch.ones(8, d), backbone.fingerprint), seq=5)
    assert not table.has_task("old") and table.family("fam").length == 8
    table.put_task(Task("new", "fam", torch.ones(8, 1), torch.ones(d, 1)), seq=6)
    assert not table.put_task(
        Task("old", "fam", torch.ones(8, 1), torch.ones(d, 1)), seq=1
    )  # older than the one removed
    table.put_task(Task("old", "fam", torch.ones(8, 1), torch.ones(d, 1)), seq=7)
    assert table.has_task("old") and table.has_task("new")


def test_two_servers_on_one_store_follow_a_reshape(tiny_dir, backbone, tmp_path):
    d = backbone.d_model
    url = store_url(tmp_path, "sqlite")
    _seed(url, backbone).close()
    with serve(tiny_dir, url) as (a, _), serve(tiny_dir, url, store_poll_s=60) as (b, app_b):
        assert httpx.get(f"{b}/tasks/t").json()["l"] == 4
        for path in ("/tasks/keep", "/tasks/t", "/families/fam"):  # through server A
            assert httpx.delete(a + path).status_code == 204
        shared = {"name": "fam", "shared": torch.ones(16, d).tolist(), "fingerprint": backbone.fingerprint}
        assert httpx.post(f"{a}/families", json=shared).status_code == 201
        task = {"name": "t", "family": "fam", "u": [2.0] * 16, "v": [1.0] * d}
        assert httpx.put(f"{a}/tasks/t", json=task).status_code == 201
        app_b.state.service.state.sync.wake()  # B sees fam put and t put, never the deletions
        deadline = time.monotonic() + 10
        while httpx.get(f"{b}/tasks/t").status_code != 200 or httpx.get(f"{b}/tasks/t").json()["l"] != 16:
            assert time.monotonic() < deadline, httpx.get(f"{b}/tasks/t").text
            time.sleep(0.05)
        assert httpx.get(f"{b}/families/fam").json()["l"] == 16
        assert httpx.post(f"{b}/predict", params={"task": "t"}, json={"inputs": "x"}).status_code == 200
