"""The store sync on every backend: only the changes since the last sequence are read, an older
change never overwrites a newer one, damaged records and foreign families are served as absent,
an unavailable feed reloads in bulk, and ``wake`` applies changes before the next poll."""

import sqlite3
import time

import httpx
import numpy as np
import pytest
import torch

from mpt_core import Family, Task
from prompts_store import Change, TaskChunk, open_store
from service.runtime.metrics import Metrics
from service.runtime.mutations import Mutations
from service.runtime.store_sync import StoreSync
from service.table.prompt_table import PromptTable

from ..serving import BACKENDS, L, make_store, metric, serve, store_url


def _wait_for(check, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.05)


def _task(name: str, d: int, value: float, family: str = "fam", r: int = 1) -> Task:
    return Task(name, family, torch.full((L, r), value), torch.full((d, r), value))


def _served_scale(table: PromptTable, name: str, shared: torch.Tensor) -> float:
    return (table.compose([name])[0] / shared).mean().item() ** 0.5  # u = v = s gives P* * s^2


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_change_read_before_a_newer_api_write_is_not_applied_after_it(backbone, tmp_path, backend):
    """The poller reads the feed (X at factors 2), the API then writes X (factors 3) and publishes;
    the poller publishing what it read must leave 3 served. The same for a deletion."""
    d = backbone.d_model
    store = make_store(store_url(tmp_path, backend), backbone.fingerprint, d, tasks=0)
    table = PromptTable(d, torch.device("cpu"))
    mutations = Mutations(store, table, backbone.fingerprint, Metrics())
    sync = StoreSync(store, mutations, mutations.metrics)
    sync.load()
    shared = store.get_family("fam").shared
    writer = open_store(store_url(tmp_path, backend))  # another process's writes
    writer.put_task(_task("x", d, 2.0))
    read_by_poller = store.changes(sync.since)  # what a poll read just now, not yet applied
    mutations._put_task(_task("x", d, 3.0), create_only=False)  # the API: persist, publish
    for change in read_by_poller:
        sync._apply(change, from_feed=True)
    assert _served_scale(table, "x", shared) == pytest.approx(3.0)
    sync.catch_up()  # the feed now shows the API's write: nothing older comes back
    assert _served_scale(table, "x", shared) == pytest.approx(3.0)

    writer.put_task(_task("y", d, 4.0))
    stale = store.changes(sync.since)
    mutations._delete_task("y")
    for change in stale:  # a write read before the deletion must not revive the task
        sync._apply(change, from_feed=True)
    sync.catch_up()
    assert not table.has_task("y")
    table.advance(sync.since)
    assert not mutations.publish(Change(stale[0].seq, "task", "y", _task("y", d, 4.0)))  # refused by the floor


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_api_and_an_outside_writer_racing_end_served_as_stored(tiny_dir, backbone, tmp_path, backend):
    d = backbone.d_model
    where = store_url(tmp_path, backend)
    make_store(where, backbone.fingerprint, d, tasks=0)
    names = ["r0", "r1", "r2"]
    with serve(tiny_dir, where, store_poll_s=0.05) as (url, app):
        writer = open_store(where)
        rng = np.random.default_rng(0)
        for k in range(60):
            name = names[k % 3]
            value = float(rng.integers(1, 9))
            if rng.random() < 0.5:
                writer.put_task(_task(name, d, value), overwrite=True)
            else:
                body = {"name": name, "family": "fam", "u": [value] * L, "v": [value] * d}
                assert httpx.put(f"{url}/tasks/{name}", json=body).status_code in (200, 201)
            if k % 7 == 6 and writer.has_task(name):
                writer.delete_task(name)
        state = app.state.service.state
        _wait_for(lambda: state.sync.since == writer.head())
        table, shared = state.mutations.table, writer.get_family("fam").shared
        for name in names:
            if writer.has_task(name):
                stored = writer.get_task(name).u[0, 0].item()
                assert _served_scale(table, name, shared) == pytest.approx(stored)
            else:
                assert not table.has_task(name)


# a directory writes (and fsyncs) one file per task: 2,000 of them prove the same in a tenth of the time
@pytest.mark.parametrize(("backend", "n"), [("sqlite", 20_000), ("directory", 2_000)])
def test_one_change_among_20000_tasks_reads_one_task(tiny_dir, backbone, tmp_path, backend, n):
    d = backbone.d_model
    where = store_url(tmp_path, backend)
    store = make_store(where, backbone.fingerprint, d, tasks=0)
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(n, L, 1, generator=g), torch.randn(n, d, 1, generator=g)
    store.put_tasks([Task(f"t{k:05d}", "fam", u[k], v[k]) for k in range(n)])
    with serve(tiny_dir, where, store_poll_s=0.05) as (url, app):
        server_store = app.state.service.state.store
        assert httpx.get(f"{url}/health/ready").json()["tasks"] == n
        assert server_store.reads.tasks == n  # the bulk load read each task once
        store.put_task(_task("t12345", d, 5.0), overwrite=True)
        store.put_task(_task("fresh", d, 6.0))
        _wait_for(lambda: httpx.get(f"{url}/tasks/fresh").status_code == 200)
        assert server_store.reads.tasks == n + 2  # the two changes, nothing else re-read
        last = f"t{n - 1:05d}"
        assert httpx.get(f"{url}/tasks", params={"after": f"t{n - 2:05d}"}).json()["tasks"][0]["name"] == last
        assert metric(url, "mpt_store_sync_lag_seconds_count") >= 1
        assert metric(url, "mpt_store_sequence") == store.head()


def test_a_damaged_record_and_a_foreign_family_are_served_as_absent(tiny_dir, backbone, tmp_path, caplog):
    d = backbone.d_model
    where = store_url(tmp_path, "sqlite")
    store = make_store(where, backbone.fingerprint, d, tasks=2)
    with serve(tiny_dir, where, store_poll_s=0.05) as (url, _):
        assert httpx.get(f"{url}/tasks/t0").status_code == 200
        with sqlite3.connect(tmp_path / "store.db") as c:  # a damaged row, committed as a change
            seq = c.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0] + 1
            nan = np.full(L, np.nan, dtype="<f4").tobytes()
            c.execute("UPDATE tasks SET u = ?, seq = ? WHERE name = 't0'", (nan, seq))
            c.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq,))
        alien = dict(backbone.fingerprint, embedding_sha256="0" * 16, model_id="other-t5")
        store.put_family(Family("alien", torch.randn(L, d), alien))
        store.put_task(Task("alien-task", "alien", torch.ones(L, 1), torch.ones(d, 1)))
        store.put_task(_task("after", d, 2.0))
        _wait_for(lambda: httpx.get(f"{url}/tasks/after").status_code == 200)
        assert httpx.get(f"{url}/tasks/t0").status_code == 404  # damaged: absent
        assert httpx.get(f"{url}/tasks/t1").status_code == 200
        assert httpx.get(f"{url}/families/alien").status_code == 404
        assert httpx.get(f"{url}/tasks/alien-task").status_code == 404
        assert metric(url, "mpt_store_not_served_total") >= 2
    assert "non-finite" in caplog.text and "other-t5" in caplog.text


def test_an_unavailable_feed_reloads_in_bulk_and_wake_applies_at_once(tiny_dir, backbone, tmp_path):
    d = backbone.d_model
    where = store_url(tmp_path, "directory")
    make_store(where, backbone.fingerprint, d, tasks=3)
    with serve(tiny_dir, where, store_poll_s=60) as (url, app):  # no poll during the test: wake() only
        sync = app.state.service.state.sync
        writer = open_store(where)
        writer.put_task(_task("x1", d, 2.0))
        (tmp_path / "store" / "journal").unlink()  # the journal starts anew, after x1
        writer.delete_task("t2")
        writer.put_task(_task("x2", d, 3.0))
        assert httpx.get(f"{url}/tasks/x1").status_code == 404  # not seen yet
        sync.wake()
        _wait_for(lambda: httpx.get(f"{url}/tasks/x2").status_code == 200, 5)
        assert httpx.get(f"{url}/tasks/x1").status_code == 200  # the reload saw it
        assert httpx.get(f"{url}/tasks/t2").status_code == 404  # and dropped what is gone
        assert metric(url, "mpt_store_reloads_total") == 2  # start-up, then the reload


def test_tasks_over_the_rank_cap_in_the_store_are_refused_at_load(tiny_dir, backbone, tmp_path, caplog):
    d = backbone.d_model
    where = store_url(tmp_path, "sqlite")
    store = make_store(where, backbone.fingerprint, d, tasks=2)  # ranks 1 and 2
    store.put_task(_task("wide", d, 1.0, r=3))
    with serve(tiny_dir, where, max_rank=2) as (url, _):
        assert httpx.get(f"{url}/health/ready").json()["tasks"] == 2
        assert httpx.get(f"{url}/tasks/wide").status_code == 404
    assert "MPT_MAX_RANK=2" in caplog.text


def test_bulk_rows_of_a_load_are_checked_against_the_served_families(backbone):
    table = PromptTable(backbone.d_model, torch.device("cpu"))
    chunk = TaskChunk(L, backbone.d_model, 1, ["a"], ["fam"], [""], [""], torch.ones(1, L, 1), torch.ones(1, 32, 1))
    refused, applied = table.put_rows(chunk, 1)
    assert applied == 0 and "not served" in refused["a"]


def test_read_ahead_hands_over_every_chunk_and_the_readers_error():
    from service.runtime.store_sync import prefetched

    assert list(prefetched(iter(range(50)))) == list(range(50))

    def failing():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for x in prefetched(failing()):
            got.append(x)
    assert got == [1]
    early = prefetched(iter(range(1000)), depth=1)
    assert next(early) == 0
    early.close()  # the consumer stops: the reader thread ends instead of blocking
