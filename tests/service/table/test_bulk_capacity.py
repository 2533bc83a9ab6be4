"""A bulk load reserves capacity per slot class, for the rows that class holds: a class of three
tasks is not given room for the whole store (on a GPU that room is real device memory), and after
the load every class holds its rows plus bounded headroom."""

import torch

from mpt_core import Family, Task
from prompts_store import open_store
from service.runtime.metrics import Metrics
from service.runtime.mutations import Mutations
from service.runtime.store_sync import StoreSync
from service.table.prompt_table import PromptTable
from service.table.slot_class import MIN_CAPACITY

from ..serving import store_url

D = 64


def test_a_bulk_load_reserves_per_class_and_ends_near_its_live_bytes(tmp_path):
    fp = {"model_id": "x", "d_model": D, "vocab_size": 10, "num_layers": 1}
    store = open_store(store_url(tmp_path, "sqlite"))
    store.put_family(Family("a", torch.ones(8, D), fp))
    store.put_family(Family("b", torch.ones(16, D), fp))
    store.put_tasks([Task(f"x{i}", "a", torch.ones(8, 1), torch.ones(D, 1)) for i in range(20_000)])
    for r in range(2, 9):  # 3 tasks in each of 7 other rank classes, and 3 of another prompt length
        store.put_tasks([Task(f"r{r}-{i}", "a", torch.ones(8, r), torch.ones(D, r)) for i in range(3)])
    store.put_tasks([Task(f"b{i}", "b", torch.ones(16, 1), torch.ones(D, 1)) for i in range(3)])

    table = PromptTable(D, torch.device("cpu"))
    mutations = Mutations(store, table, fp, Metrics())
    assert StoreSync(store, mutations, mutations.metrics).load()["task"] == 20_024

    classes = table.classes()
    assert len(classes) == 9
    live = 0
    for (l, r), (n, capacity) in sorted(classes.items(), key=lambda kv: kv[1]):  # the small ones first
        assert capacity <= max(MIN_CAPACITY, n + n // 8), ((l, r), n, capacity)
        live += n * (l + D) * r * 4
    shared = (8 + 16) * D * 4
    assert table.nbytes() - shared <= 1.13 * live + 9 * MIN_CAPACITY * (16 + D) * 8 * 4
    # uploads after the load still grow a class (amortised doubling)
    table.put_task(Task("late", "a", torch.ones(8, 2), torch.ones(D, 2)), seq=store.head() + 1)
    assert table.classes()[(8, 2)][0] == 4
