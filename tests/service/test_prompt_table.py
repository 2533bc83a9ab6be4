"""The resident prompt table: slots, amortised growth, and no torn reads under replacement."""

import threading

import pytest
import torch

from prompts_store import Conflict, Family, InvalidArtifact, NotFound, Task
from service.prompt_table import PromptTable

FP = {"d_model": 6}
D = 6


def fam(name="f", l=3, seed=0):
    return Family(name, torch.randn(l, D, generator=torch.Generator().manual_seed(seed)), FP)


def task(name, family="f", l=3, r=1, scale=None, seed=1):
    g = torch.Generator().manual_seed(seed)
    if scale is not None:
        return Task(name, family, torch.full((l, r), scale), torch.full((D, r), scale))
    return Task(name, family, torch.randn(l, r, generator=g), torch.randn(D, r, generator=g))


def test_compose_matches_the_formula_for_mixed_ranks():
    t = PromptTable(D, torch.device("cpu"), task_capacity=2)
    f = fam()
    t.put_family(f)
    tasks = [task("a", r=1, seed=1), task("b", r=3, seed=2), task("c", r=2, seed=3)]
    for x in tasks:
        t.put_task(x)
    out = t.compose(["b", "a", "c", "b"])
    for row, x in zip(out, [tasks[1], tasks[0], tasks[2], tasks[1]]):
        torch.testing.assert_close(row, f.shared * (x.u @ x.v.T), rtol=0, atol=1e-6)


def test_capacity_doubles_and_freed_slots_are_reused():
    t = PromptTable(D, torch.device("cpu"), task_capacity=4)
    t.put_family(fam())
    ptrs = set()
    for k in range(4):
        t.put_task(task(f"t{k}", seed=k))
        ptrs.add(t.u.data_ptr())
    assert len(ptrs) == 1  # no reallocation while capacity lasts
    t.put_task(task("t4"))
    assert t.u.shape[0] == 8  # grown by doubling, once
    t.remove_task("t1")
    t.put_task(task("again"))
    assert t.tasks["again"].slot == 1 and t.u.shape[0] == 8
    with pytest.raises(NotFound):
        t.compose(["t1"])


def test_replacing_a_task_in_place_keeps_its_slot():
    t = PromptTable(D, torch.device("cpu"))
    t.put_family(fam())
    t.put_task(task("a", r=2, seed=1))
    slot = t.tasks["a"].slot
    new = task("a", r=1, seed=5)
    t.put_task(new)
    assert t.tasks["a"].slot == slot and t.tasks["a"].rank == 1
    torch.testing.assert_close(t.compose(["a"])[0], fam().shared * (new.u @ new.v.T), rtol=0, atol=1e-6)


def test_family_rules():
    t = PromptTable(D, torch.device("cpu"))
    t.put_family(fam())
    t.put_task(task("a"))
    with pytest.raises(Conflict, match="cannot change it to l=5"):
        t.put_family(fam(l=5))
    with pytest.raises(Conflict, match="used by 1 task"):
        t.remove_family("f")
    with pytest.raises(NotFound, match="family 'nope'"):
        t.put_task(task("b", family="nope"))
    with pytest.raises(InvalidArtifact, match="do not fit"):
        t.put_task(task("b", l=4))
    with pytest.raises(Conflict, match="d=7"):
        t.put_family(Family("g", torch.randn(2, 7), {}))


def test_a_reader_sees_old_or_new_factors_never_a_mix():
    """u = v = s·1 gives P = P*·s²; a torn read (new u, old v) would give P*·s·s' with s != s'."""
    t = PromptTable(D, torch.device("cpu"))
    f = fam()
    t.put_family(f)
    scales = [float(s) for s in range(2, 12)]
    t.put_task(task("hot", scale=scales[0]))
    stop, bad = threading.Event(), []

    def writer():
        k = 0
        while not stop.is_set():
            t.put_task(task("hot", scale=scales[k % len(scales)]))
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
