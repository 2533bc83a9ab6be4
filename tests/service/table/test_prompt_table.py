"""The resident prompt table: slot classes, dense rows, memory that comes back, the sequence rule,
sorted pages, and no torn reads under replacement."""

import threading

import numpy as np
import pytest
import torch

from mpt_core import Family, Task
from prompts_store import Conflict, InvalidArtifact, NotFound, TaskChunk
from service.table.prompt_table import PromptTable
from service.table.slot_class import MIN_CAPACITY

FP = {"d_model": 6}
D = 6
CPU = torch.device("cpu")


def fam(name="f", l=3, seed=0):
    return Family(name, torch.randn(l, D, generator=torch.Generator().manual_seed(seed)), FP)


def task(name, family="f", l=3, r=1, scale=None, seed=1, created_at=None, source=None):
    g = torch.Generator().manual_seed(seed)
    extra = {} if created_at is None else {"created_at": created_at}
    extra |= {} if source is None else {"source": source}
    if scale is not None:
        return Task(name, family, torch.full((l, r), scale), torch.full((D, r), scale), **extra)
    return Task(name, family, torch.randn(l, r, generator=g), torch.randn(D, r, generator=g), **extra)


def table_with_family(**kw) -> PromptTable:
    t = PromptTable(D, CPU, **kw)
    t.put_family(fam(), seq=1)
    return t


def test_compose_matches_the_formula_for_mixed_ranks():
    t = table_with_family()
    f = fam()
    tasks = [task("a", r=1, seed=1), task("b", r=3, seed=2), task("c", r=2, seed=3)]
    for k, x in enumerate(tasks):
        t.put_task(x, seq=10 + k)
    assert t.classes() == {(3, 1): (1, MIN_CAPACITY), (3, 3): (1, MIN_CAPACITY), (3, 2): (1, MIN_CAPACITY)}
    out = t.compose(["b", "a", "c", "b"])
    for row, x in zip(out, [tasks[1], tasks[0], tasks[2], tasks[1]]):
        torch.testing.assert_close(row, f.shared * (x.u @ x.v.T), rtol=0, atol=1e-6)
    one = t.compose(["c"])  # a batch of one class takes the single-gather path
    torch.testing.assert_close(one[0], f.shared * (tasks[2].u @ tasks[2].v.T), rtol=0, atol=1e-6)


def test_rows_stay_dense_capacity_doubles_and_shrinks():
    t = table_with_family()
    names = [f"t{k:03d}" for k in range(40)]
    for k, n in enumerate(names):
        t.put_task(task(n, scale=float(k + 1)), seq=10 + k)
    assert t.classes()[(3, 1)] == (40, 64)  # 16 -> 32 -> 64
    for k, n in enumerate(names[:35]):  # removing moves the last row into the hole
        assert t.remove_task(n, seq=100 + k)
    size, cap = t.classes()[(3, 1)]
    assert size == 5 and cap < 64  # under a quarter full: shrunk
    f = fam()
    for k, n in enumerate(names[35:], start=35):  # every name still finds its own factors
        torch.testing.assert_close(t.compose([n])[0], f.shared * float(k + 1) ** 2, rtol=1e-6, atol=1e-5)
    with pytest.raises(NotFound):
        t.compose([names[0]])


def test_a_task_changing_rank_moves_class_and_the_widest_class_returns_its_memory():
    t = table_with_family(max_rank=8)
    t.put_task(task("narrow", r=1), seq=10)
    before = t.nbytes()
    t.put_task(task("wide", r=8, seed=3), seq=11)
    assert t.nbytes() > before and (3, 8) in t.classes()
    t.put_task(task("wide", r=2, seed=4), seq=12)  # rewritten at rank 2: moves, the rank-8 class goes
    assert (3, 8) not in t.classes() and t.task("wide").rank == 2
    assert t.remove_task("wide", seq=13)
    assert t.nbytes() == before and set(t.classes()) == {(3, 1)}
    with pytest.raises(Conflict, match="MPT_MAX_RANK=8"):
        t.put_task(task("too-wide", r=9), seq=14)


def test_the_sequence_rule_keeps_the_newest_version_whoever_publishes_last():
    t = table_with_family()
    new, old = task("x", scale=3.0), task("x", scale=2.0)
    assert t.put_task(new, seq=20)
    assert not t.put_task(old, seq=15)  # an older write read before the newer one was applied
    assert t.task("x").seq == 20
    torch.testing.assert_close(t.compose(["x"])[0], fam().shared * 9.0)
    assert not t.remove_task("x", seq=18)  # an older deletion does not remove a newer write
    assert t.remove_task("x", seq=21)
    assert not t.put_task(old, seq=19)  # an older write does not revive a deleted name
    t.advance(21)  # the sync's cursor passed the deletion: it is forgotten, the floor refuses instead
    assert not t.put_task(old, seq=21) and not t.has_task("x")
    assert t.put_task(new, seq=22) and t.has_task("x")
    assert not t.put_family(fam(seed=5), seq=1)  # the same rule for families


def test_family_rules():
    t = table_with_family()
    t.put_task(task("a"), seq=4)
    with pytest.raises(Conflict, match="cannot change it to l=5"):  # a task newer than the reshape
        t.put_family(fam(l=5), seq=3)
    with pytest.raises(Conflict, match="used by 1 task"):
        t.remove_family("f", seq=3)
    with pytest.raises(NotFound, match="family 'nope'"):
        t.put_task(task("b", family="nope"), seq=4)
    with pytest.raises(InvalidArtifact, match="do not fit"):
        t.put_task(task("b", l=4), seq=4)
    with pytest.raises(Conflict, match="d=7"):
        t.put_family(Family("g", torch.randn(2, 7), {}), seq=5)
    t.put_family(fam("long", l=9), seq=6)
    assert t.remove_family("long", seq=7) and not t._families.has_length(9)  # its shared table went with it


def test_bulk_rows_are_served_or_refused_by_name():
    t = table_with_family(max_rank=2)
    n = 6
    chunk = TaskChunk(
        3,
        D,
        1,
        [f"b{k}" for k in range(n)],
        ["f", "f", "nope", "f", "f", "f"],
        ["", "odd text"] + [""] * 4,
        ["s1"] * 3 + ["s2"] * 3,
        torch.randn(n, 3, 1),
        torch.randn(n, D, 1),
    )
    refused, applied = t.put_rows(chunk, np.arange(10, 10 + n))
    assert refused == {"b2": "family 'nope' is not served"} and applied == 5 and len(t) == 5
    assert t.task("b1").created_at == "odd text" and t.task("b4").source == "s2" and t.task("b5").seq == 15
    wide = TaskChunk(3, D, 3, ["w"], ["f"], [""], [""], torch.randn(1, 3, 3), torch.randn(1, D, 3))
    assert "MPT_MAX_RANK=2" in t.put_rows(wide, 20)[0]["w"]
    long = TaskChunk(4, D, 1, ["l4"], ["f"], [""], [""], torch.randn(1, 4, 1), torch.randn(1, D, 1))
    assert "l=3" in t.put_rows(long, 21)[0]["l4"]


def test_created_at_is_kept_exactly_without_a_string_per_task():
    t = table_with_family()
    canonical = "2026-11-26T12:34:56+00:00"
    for k, when in enumerate([canonical, "", "26 Nov 2026", "2026-11-26T12:34:56.5+00:00"]):
        t.put_task(task(f"c{k}", created_at=when), seq=10 + k)
        assert t.task(f"c{k}").created_at == when
    assert set(t.slots.created_text) == {"c2", "c3"}  # only the non-canonical ones keep their text


def interned_sources(t: PromptTable) -> set[str]:
    return set(t.slots.sources)


def test_a_source_is_forgotten_with_the_last_task_that_used_it():
    """Sources are interned (one string per distinct source, a small code per row): each one is
    kept while a served task uses it, so one-off sources (one per training run) do not pile up."""
    t = table_with_family(max_rank=4)
    for k in range(40):
        t.put_task(task(f"s{k:02d}", source=f"run-{k % 20}"), seq=10 + k)
    assert interned_sources(t) == {f"run-{k}" for k in range(20)}
    for k in range(0, 40, 20):  # both users of run-0 go; run-1 keeps one of its two
        assert t.remove_task(f"s{k:02d}", seq=100 + k)
    assert t.remove_task("s01", seq=150)
    assert interned_sources(t) == {f"run-{k}" for k in range(1, 20)}
    t.put_task(task("s21", source="fresh"), seq=200)  # rewritten in place: run-1 loses its last user
    t.put_task(task("s02", r=2, source="moved"), seq=201)  # moves class: run-2 keeps s22
    assert "run-1" not in interned_sources(t) and {"fresh", "moved", "run-2"} <= interned_sources(t)
    old = TaskChunk(3, D, 1, ["s03", "ghost"], ["f", "nope"], [""] * 2, ["stale", "refused"], *_factors(2))
    assert t.put_rows(old, 5) == ({"ghost": "family 'nope' is not served"}, 0)  # s03 is newer: not applied
    assert not {"stale", "refused"} & interned_sources(t)
    t.put_task(task("late", source="run-0"), seq=300)  # a dropped source's code is reused safely
    live = {e.name: e.source for e in t.task_page(None, 1000, None)[0]}
    assert live["late"] == "run-0" and live["s21"] == "fresh" and live["s02"] == "moved" and live["s22"] == "run-2"
    assert interned_sources(t) == set(live.values())
    for k, name in enumerate(sorted(live)):
        assert t.remove_task(name, seq=400 + k)
    assert interned_sources(t) == set()


def _factors(n: int, l: int = 3, r: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, l, r), torch.randn(n, D, r)


def test_pages_are_sorted_with_a_cursor_and_a_family_filter():
    t = table_with_family()
    t.put_family(fam("g"), seq=2)
    for k in range(25):
        t.put_task(task(f"t{k:02d}", family="g" if k % 5 == 0 else "f"), seq=10 + k)
    got, after = [], None
    while True:
        page, more = t.task_page(after, 10, None)
        got += [e.name for e in page]
        if not more:
            break
        after = page[-1].name
    assert got == [f"t{k:02d}" for k in range(25)]
    page, more = t.task_page("t04", 3, "g")
    assert [e.name for e in page] == ["t05", "t10", "t15"] and more
    assert t.family_tasks("g") == 5 and t.family_page(None, 1)[0][0][0].name == "f"
    with pytest.raises(NotFound):
        t.task_page(None, 3, "nope")


def test_a_reader_sees_old_or_new_factors_never_a_mix():
    """u = v = s·1 gives P = P*·s²; a torn read (new u, old v) would give P*·s·s' with s != s'."""
    t = table_with_family()
    f = fam()
    scales = [float(s) for s in range(2, 12)]
    t.put_task(task("hot", scale=scales[0]), seq=2)
    stop, bad = threading.Event(), []

    def writer():
        k = 0
        while not stop.is_set():
            t.put_task(task("hot", scale=scales[k % len(scales)]), seq=3 + k)
            k += 1

    th = threading.Thread(target=writer)
    th.start()
    try:
        for _ in range(3000):
            ratio = (t.compose(["hot"])[0] / f.shared).mean().item()
            if not any(abs(ratio - s * s) < 1e-3 for s in scales):
                bad.append(ratio)
    finally:
        stop.set()
        th.join()
    assert not bad, bad[:5]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_table_on_cuda_composes_what_the_cpu_table_does():
    """Slot classes, growth, swap-removal and rank moves with the factors on the GPU."""
    tables = {dev: PromptTable(D, torch.device(dev)) for dev in ("cpu", "cuda")}
    long = fam("long", l=5, seed=7)
    for t in tables.values():
        t.put_family(fam(), seq=1)
        t.put_family(long, seq=2)
    n = 40  # past MIN_CAPACITY twice: the classes grow on the device
    g = torch.Generator().manual_seed(0)
    chunk = TaskChunk(
        3,
        D,
        2,
        [f"b{k:02d}" for k in range(n)],
        ["f"] * n,
        [""] * n,
        [""] * n,
        torch.randn(n, 3, 2, generator=g),
        torch.randn(n, D, 2, generator=g),
    )
    for t in tables.values():
        assert t.put_rows(chunk, 10) == ({}, n)
        t.put_task(task("l5", family="long", l=5, r=3, seed=4), seq=11)
        t.put_task(task("b07", r=1, seed=5), seq=12)  # rank 2 -> 1: moves class
        for k in range(0, 30, 3):
            assert t.remove_task(f"b{k:02d}", seq=20 + k)
    names = ["b07", "b10", "b39", "b01", "b08"]
    cpu, gpu = (tables[dev].compose(names) for dev in ("cpu", "cuda"))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-5)
    x = task("l5", family="long", l=5, r=3, seed=4)
    torch.testing.assert_close(
        tables["cuda"].compose(["l5"])[0].cpu(), long.shared * (x.u @ x.v.T), rtol=1e-5, atol=1e-5
    )
    assert tables["cuda"].classes() == tables["cpu"].classes()
