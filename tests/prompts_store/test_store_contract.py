"""The store interface, held to the same rules by every backend (see conftest.BACKENDS)."""

import sqlite3
import time

import pytest
import torch
from safetensors.torch import save_file

from mpt_core import Family, Task
from prompts_store import Conflict, InvalidArtifact, InvalidName, NotFound, TaskChunk, open_store
from prompts_store.screen import finite_rows

from .helpers import make_family, make_task, same_task


def test_round_trip_is_exact(store):
    fam = make_family()
    t1, t3 = make_task("one", r=1, seed=1), make_task("three", r=3, seed=2)
    half = Task("half", "fam", torch.randn(4, 2).to(torch.bfloat16), torch.randn(6, 2).to(torch.float16))
    s1 = store.put_family(fam)
    s2 = store.put_tasks([t1, t3])
    s3 = store.put_task(half)
    assert (s1, s2, s3) == (1, 3, 4) and store.head() == 4

    got = store.get_family("fam")
    assert torch.equal(got.shared, fam.shared) and got.fingerprint == fam.fingerprint
    assert (got.created_at, got.source) == (fam.created_at, fam.source)
    for t in (t1, t3, half):
        assert same_task(store.get_task(t.name), t)
    assert store.get_task("half").u.dtype == torch.float32

    info = store.task_info("three")
    assert (info.family, info.rank, info.l, info.d, info.source) == ("fam", 3, 4, 6, "test:2")
    assert info.nbytes == (4 + 6) * 3 * 4
    finfo = store.family_info("fam")
    assert (finfo.l, finfo.d, finfo.fingerprint) == (4, 6, fam.fingerprint)
    assert store.has_family("fam") and store.has_task("one") and not store.has_task("nope")
    assert store.count_families() == 1 and store.count_tasks() == 3 and store.count_tasks("fam") == 3
    assert store.list_tasks(family="fam") == ["half", "one", "three"]


def test_pagination_and_family_filter(store):
    store.put_family(make_family("a"))
    store.put_family(make_family("b"))
    names = [f"t{i:02d}" for i in range(25)]
    store.put_tasks([make_task(n, "a" if i % 3 else "b", seed=i) for i, n in enumerate(names)])

    pages, after = [], None
    while page := store.list_tasks(after=after, limit=10):
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [10, 10, 5] and [n for p in pages for n in p] == names
    assert store.list_tasks() == names
    assert store.list_tasks(after="t05", limit=2) == ["t06", "t07"]
    assert store.list_tasks(after="t1", limit=2) == ["t10", "t11"]  # a cursor need not be a stored name

    of_b = [n for i, n in enumerate(names) if i % 3 == 0]
    assert store.list_tasks(family="b") == of_b
    assert store.list_tasks(family="b", limit=3) + store.list_tasks(family="b", after=of_b[2]) == of_b
    assert store.count_tasks("b") == len(of_b) and store.list_tasks(family="zz") == []
    assert store.list_families() == ["a", "b"]
    assert store.list_families(limit=1) == ["a"] and store.list_families(after="a") == ["b"]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="limit"):
            store.list_tasks(limit=bad)


def test_the_rules_hold_and_a_refusal_writes_nothing(store):
    with pytest.raises(NotFound, match="task 't': family 'fam' does not exist"):
        store.put_task(make_task())
    store.put_family(make_family(l=4, d=6))
    store.put_task(make_task())
    head = store.head()

    refusals = [
        (Conflict, "family 'fam' already exists", lambda: store.put_family(make_family())),
        (Conflict, "task 't' already exists", lambda: store.put_task(make_task(seed=9))),
        (InvalidArtifact, "u has length 5, family 'fam' needs l=4", lambda: store.put_task(make_task("x", l=5))),
        (InvalidArtifact, "v has length 7, family 'fam' needs d=6", lambda: store.put_task(make_task("x", d=7))),
        (Conflict, "used by 1 task", lambda: store.delete_family("fam")),
        (Conflict, "cannot replace it with l=5", lambda: store.put_family(make_family(l=5), overwrite=True)),
        (NotFound, "task 'nope' does not exist", lambda: store.delete_task("nope")),
        (NotFound, "family 'nope' does not exist", lambda: store.delete_family("nope")),
        (NotFound, "task 'nope' does not exist", lambda: store.get_task("nope")),
        (NotFound, "family 'nope' does not exist", lambda: store.get_family("nope")),
        (NotFound, "does not exist", lambda: store.task_info("nope")),
        (InvalidArtifact, "expected a Task", lambda: store.put_tasks([make_task("y"), "not a task"])),
        (InvalidArtifact, "expected a Family", lambda: store.put_family(make_family().shared)),
    ]
    for error, message, attempt in refusals:
        with pytest.raises(error, match=message):
            attempt()
    assert store.head() == head and store.list_tasks() == ["t"] and store.list_families() == ["fam"]

    store.put_task(make_task(seed=9), overwrite=True)  # allowed with overwrite
    assert torch.equal(store.get_task("t").u, make_task(seed=9).u)
    store.put_family(make_family(seed=3), overwrite=True)  # same shape: allowed although it has tasks
    store.delete_task("t")
    store.put_family(make_family(l=5), overwrite=True)  # no tasks left: it may change shape
    store.delete_family("fam")
    assert store.list_families() == [] and store.list_tasks() == []


@pytest.mark.parametrize("bad", ["../x", "A", "", "a" * 65, "-x", ".x", "a/b", "a b", None, 3])
def test_bad_names_are_refused_before_they_reach_storage(store, bad):
    for attempt in (
        lambda: store.get_task(bad),
        lambda: store.get_family(bad),
        lambda: store.has_task(bad),
        lambda: store.delete_task(bad),
        lambda: store.delete_family(bad),
        lambda: store.task_info(bad),
        lambda: store.list_tasks(family=bad or "-"),  # (None means "no filter" there)
        lambda: store.list_tasks(after=bad or "-"),
    ):
        with pytest.raises(InvalidName):
            attempt()
    assert store.head() == 0


@pytest.mark.parametrize(
    "u, v, message",
    [
        (torch.tensor([[1.0], [float("nan")], [0.0], [0.0]]), torch.ones(6, 1), "non-finite"),
        (torch.ones(4, 1), torch.full((6, 1), float("inf")), "non-finite"),
        (torch.ones(4, 1, dtype=torch.int64), torch.ones(6, 1), "dtype torch.int64"),
        (torch.ones(4, 1, dtype=torch.float64), torch.ones(6, 1), "dtype torch.float64"),
        (torch.ones(4, 2), torch.ones(6, 1), "rank 2 but v has rank 1"),
        (torch.ones(4, 1, 1), torch.ones(6, 1), "must be 2-D"),
        ([[1.0]] * 4, torch.ones(6, 1), "must be a tensor"),
    ],
)
def test_bad_tensors_never_reach_a_store(store, u, v, message):
    store.put_family(make_family())
    with pytest.raises(InvalidArtifact, match=message):
        store.put_task(Task("t", "fam", u, v))
    with pytest.raises(InvalidArtifact, match="non-finite"):
        store.put_family(Family("nan", torch.full((4, 6), float("nan")), {}))
    assert store.head() == 1 and store.list_tasks() == []


def test_put_tasks_is_all_or_nothing_and_names_the_bad_task(store):
    store.put_family(make_family())
    store.put_task(make_task("taken"))
    head = store.head()
    good = [make_task(f"b{i:02d}", seed=i) for i in range(50)]
    cases = [
        (InvalidArtifact, "task 'b37'.*u has length 5", good[:37] + [make_task("b37", l=5)] + good[38:]),
        (NotFound, "task 'b20': family 'ghost' does not exist", good[:20] + [make_task("b20", "ghost")] + good[21:]),
        (Conflict, "task 'taken' already exists", [*good, make_task("taken")]),
        (InvalidArtifact, "'b03' appears more than once", [*good, make_task("b03")]),
    ]
    for error, message, batch in cases:
        with pytest.raises(error, match=message):
            store.put_tasks(batch)
        assert store.head() == head and store.list_tasks() == ["taken"]

    last = store.put_tasks(good)
    assert last == head + 50 == store.head()
    seqs = [c.seq for c in store.changes(head)]
    assert seqs == list(range(head + 1, head + 51))  # one sequence number per task of the batch
    assert store.put_tasks([]) == store.head()


def test_change_feed_gives_each_name_once_with_its_latest_state(store):
    assert store.changes(0) == []
    store.put_family(make_family())
    h0 = store.head()
    store.put_tasks([make_task("a", seed=1), make_task("b", seed=2), make_task("c", seed=3)])
    store.put_task(make_task("a", seed=4), overwrite=True)
    store.delete_task("b")

    feed = store.changes(h0)
    assert [(c.kind, c.name) for c in feed] == [("task", "c"), ("task", "a"), ("task", "b")]
    assert [c.seq for c in feed] == sorted(c.seq for c in feed) and feed[-1].seq == store.head()
    by_name = {c.name: c for c in feed}
    assert same_task(by_name["a"].value, make_task("a", seed=4)) and by_name["b"].value is None
    assert store.changes(store.head()) == []

    # a tombstone is one row per name; writing the name again replaces it
    store.put_task(make_task("b", seed=5))
    after = store.changes(0)
    assert [c.name for c in after].count("b") == 1
    assert same_task(next(c for c in after if c.name == "b").value, make_task("b", seed=5))
    store.delete_task("b")
    store.delete_task("c")
    store.delete_task("a")
    store.delete_family("fam")
    final = store.changes(0)
    assert {(c.kind, c.name) for c in final} == {("family", "fam"), ("task", "a"), ("task", "b"), ("task", "c")}
    assert all(c.value is None for c in final)

    # paging with a small limit reaches the same state as one call
    paged, since = [], 0
    while page := store.changes(since, limit=2):
        assert len(page) <= 2
        paged += page
        since = page[-1].seq
    assert {(c.kind, c.name): c.value for c in paged} == {(c.kind, c.name): c.value for c in final}
    with pytest.raises(ValueError, match="since"):
        store.changes(-1)


def test_put_task_chunk_writes_a_stack_like_put_tasks_all_or_nothing(store):
    store.put_family(make_family())
    n = 4
    u, v = torch.randn(n, 4, 2), torch.randn(n, 6, 2)

    def chunk(names, families=None, u=u, v=v):
        k = len(names)
        return TaskChunk(4, 6, 2, names, families or ["fam"] * k, ["2026-01-02T03:04:05+00:00"] * k, ["s"] * k, u, v)

    assert store.put_task_chunk(chunk(["a", "b", "c", "d"])) == store.head() == 5
    got = store.get_task("c")
    assert torch.equal(got.u, u[2]) and torch.equal(got.v, v[2])
    assert (got.created_at, got.source) == ("2026-01-02T03:04:05+00:00", "s")
    assert [c.name for c in store.changes(1)] == ["a", "b", "c", "d"]
    nan = u.clone()
    nan[2, 1, 0] = float("nan")
    refusals = [
        (chunk(["e", "f", "g", "h"], u=nan), InvalidArtifact, "'g'"),
        (chunk(["e", "f", "e", "h"]), InvalidArtifact, "'e' appears more than once"),
        (chunk(["e", "f", "g", "h"], ["fam", "fam", "nope", "fam"]), NotFound, "'g': family 'nope'"),
        (chunk(["e", "f", "c", "h"]), Conflict, "'c' already exists"),
        (chunk(["e", "f", "Bad", "h"]), InvalidName, "'Bad'"),
    ]
    for bad, error, message in refusals:
        with pytest.raises(error, match=message):
            store.put_task_chunk(bad)
    assert store.head() == 5 and store.count_tasks() == 4  # nothing of a refused chunk was written
    assert store.put_task_chunk(chunk(["c", "e", "f", "g"]), overwrite=True) == 9


def test_every_change_carries_its_commit_time(store):
    t0 = time.time()
    store.put_family(make_family())
    store.put_tasks([make_task("a", seed=1), make_task("b", seed=2)])
    store.delete_task("b")
    feed = store.changes(0)
    assert len(feed) == 3 and all(t0 - 1 <= c.committed_at <= time.time() + 1 for c in feed)
    assert feed[-1].value is None  # a tombstone has one too


def test_bulk_load_then_changes_rebuilds_the_store_even_with_writes_in_between(store_url):
    writer = open_store(store_url)
    writer.put_family(make_family("fa", l=4))
    writer.put_family(make_family("fb", l=3))
    writer.put_tasks([make_task(f"a{i}", "fa", l=4, r=1 + i % 2, seed=i) for i in range(7)])
    writer.put_tasks([make_task(f"b{i}", "fb", l=3, seed=10 + i) for i in range(4)])

    reader = open_store(store_url)
    head = reader.head()  # FIRST, as the contract says
    copy: dict[str, Task] = {}
    families = {c.names[i]: c.family(i) for c in reader.iter_family_chunks() for i in range(len(c))}
    chunks = reader.iter_task_chunks(chunk_size=3)
    for n, chunk in enumerate(chunks):
        assert len(chunk) <= 3 and chunk.rejected == {}
        assert chunk.u.shape == (len(chunk), chunk.l, chunk.rank) and chunk.v.shape == (len(chunk), chunk.d, chunk.rank)
        assert all(families[f].length == chunk.l for f in chunk.families)
        copy.update({chunk.names[i]: chunk.task(i) for i in range(len(chunk))})
        if n == 0:  # writes land while the bulk load runs
            writer.put_task(make_task("a0", "fa", l=4, seed=99), overwrite=True)
            writer.delete_task("b1")
            writer.put_task(make_task("new", "fb", l=3, seed=98))
    assert reader.reads.tasks == 11  # every stored task, materialised once by the bulk load
    for change in reader.changes(head) + reader.changes(head):  # applying twice is harmless
        if change.kind == "task":
            if change.value is None:
                copy.pop(change.name, None)
            else:
                copy[change.name] = change.value
    assert sorted(copy) == writer.list_tasks()
    assert all(same_task(copy[n], writer.get_task(n)) for n in copy)
    writer.close()
    reader.close()


def _tamper(store, name: str, u: torch.Tensor | None = None, family: str = "fa", raw_u: bytes | None = None) -> None:
    """Change a stored task behind the store's back, as a broken disk or a hand edit would."""
    u = torch.ones(4, 1) if u is None else u
    if store.backend == "sqlite":
        blob = raw_u if raw_u is not None else u.numpy().astype("<f4").tobytes()
        with sqlite3.connect(store.path) as c:
            c.execute("UPDATE tasks SET u = ?, family = ? WHERE name = ?", (blob, family, name))
        return
    if store.backend == "postgresql":
        import psycopg

        blob = raw_u if raw_u is not None else u.numpy().astype("<f4").tobytes()
        with psycopg.connect(store._conninfo) as c:
            c.execute("UPDATE mpt_tasks SET u = %s, family = %s WHERE name = %s", (blob, family, name))
        return
    tensors = {"u": u, "v": torch.ones(6, 1)} if raw_u is None else {"u": torch.ones(3, 1), "v": torch.ones(6, 1)}
    save_file(tensors, store.task_path(name), metadata={"family": family})


def test_bulk_load_leaves_out_what_fails_the_load_checks(store):
    store.put_family(make_family("fa", l=4))
    store.put_tasks([make_task(f"t{i}", "fa", l=4, seed=i) for i in range(6)])
    _tamper(store, "t1", u=torch.tensor([[1.0], [float("nan")], [0.0], [0.0]]))
    _tamper(store, "t2", family="ghost")
    _tamper(store, "t3", raw_u=b"\x00" * 12)  # three floats where four belong
    chunks = list(store.iter_task_chunks())
    kept = sorted(n for c in chunks for n in c.names)
    rejected = {n: why for c in chunks for n, why in c.rejected.items()}
    assert kept == ["t0", "t4", "t5"] and sorted(rejected) == ["t1", "t2", "t3"]
    assert "non-finite" in rejected["t1"] and "family 'ghost' does not exist" in rejected["t2"]
    assert store.reads.tasks == 3
    with pytest.raises(InvalidArtifact, match="non-finite"):
        store.get_task("t1")


def test_stats_count_and_size(store):
    store.put_family(make_family("fa", l=4, d=6))
    store.put_tasks([make_task(f"t{i}", "fa", r=1 + i % 2, seed=i) for i in range(4)])
    stats = store.stats()
    assert (stats["families"], stats["tasks"], stats["head"]) == (1, 4, 5)
    assert stats["factor_bytes"] == (4 + 6) * (1 + 2 + 1 + 2) * 4 and stats["shared_bytes"] == 4 * 6 * 4
    assert stats["by_family"]["fa"] == {"l": 4, "d": 6, "tasks": 4, "factor_bytes": stats["factor_bytes"]}
    assert stats["backend"] == store.backend and stats["disk_bytes"] > 0


def test_finite_rows_is_exact_even_where_a_row_sum_overflows():
    x = torch.zeros(6, 3, 2)
    x[1, 0, 0] = float("nan")
    x[2, 1, 1] = float("inf")
    x[3, 0, 0], x[3, 2, 1] = float("inf"), float("-inf")  # sums to NaN
    x[4] = 3e38  # finite values whose sum overflows to inf
    x[5, 2, 0] = float("-inf")
    assert finite_rows(x).tolist() == [True, False, False, False, True, False]
    assert finite_rows(torch.ones(4, 2)).tolist() == [True] * 4
