from collections import Counter

import pytest

from training.data.examples import Example
from training.data.sampler import MultitaskSampler


def _tasks(n):
    return [[Example(f"t{k} x{i}", str(k)) for i in range(5)] for k in range(n)]


@pytest.mark.parametrize("n_tasks,kappa", [(2, 2), (6, 3), (6, 6), (9, 4)])
def test_each_batch_draws_k_in_2_to_kappa_distinct_tasks_and_all_tasks_appear(n_tasks, kappa):
    sampler = MultitaskSampler(_tasks(n_tasks), batch_size=12, kappa=kappa, seed=3)
    ks, seen = Counter(), set()
    for _ in range(600):
        rows = sampler.next_batch()
        tasks = {r.task for r in rows}
        assert 2 <= len(tasks) <= kappa
        assert len(rows) == 12
        assert all(r.example.target == str(r.task) for r in rows)  # examples come from their own task
        counts = Counter(r.task for r in rows).values()
        assert max(counts) - min(counts) <= 1  # the batch is shared evenly
        ks[len(tasks)] += 1
        seen |= tasks
    assert seen == set(range(n_tasks))
    assert set(ks) == set(range(2, kappa + 1))  # every K in 2..κ occurs


def test_sampler_is_deterministic_and_resumable():
    a = MultitaskSampler(_tasks(5), 8, 4, seed=1)
    b = MultitaskSampler(_tasks(5), 8, 4, seed=1)
    assert [a.next_batch() for _ in range(5)] == [b.next_batch() for _ in range(5)]
    state = a.state()
    nxt = a.next_batch()
    b.load_state(state)
    assert b.next_batch() == nxt


@pytest.mark.parametrize(
    "n,kappa,batch,msg",
    [(1, 2, 8, "at least 2 tasks"), (3, 4, 8, "kappa=4"), (3, 1, 8, "kappa=1"), (3, 3, 2, "batch_size=2")],
)
def test_bad_sampler_settings_are_refused(n, kappa, batch, msg):
    with pytest.raises(ValueError, match=msg):
        MultitaskSampler(_tasks(n), batch, kappa, seed=0)
