"""Fairness and budgets of the micro-batcher, with a plain function as ``run_batch`` (no model):
round-robin over tasks and over a task's requests, the per-task cap, the padded-token budget of a
batch, and rows dropped once their request's deadline has passed. The worker is held inside a
batch (``gate``) while the queue is arranged, so the order is exact."""

import asyncio
import threading
import time

import pytest

from service.inference.batcher import MicroBatcher, QueueFull, TaskQueueFull
from service.inference.rows import BatchCost, Candidates, Row, RowResult

TIMEOUT = 5.0


def row(task: str, n: int = 3) -> Row:
    return Row(task, list(range(n)))


class Gated:
    """Answers every row with its task name; the first batch waits for ``gate``."""

    def __init__(self):
        self.batches: list[list[str]] = []
        self.entered, self.gate = threading.Event(), threading.Event()

    def __call__(self, rows):
        self.batches.append([r.task for r in rows])
        self.entered.set()
        assert self.gate.wait(TIMEOUT)
        return [RowResult(output=r.task) for r in rows]


@pytest.fixture
def held():
    """A batcher whose worker is inside a first batch ("busy") until the test releases it."""
    made = []

    async def make(**kw):
        run = Gated()
        b = MicroBatcher(run, **({"max_batch": 4, "max_wait_s": 0.0, "max_queue": 1000} | kw))
        b.start()
        made.append(b)
        busy = b.submit([row("busy")])
        assert await asyncio.to_thread(run.entered.wait, TIMEOUT)
        return b, run, busy

    yield make
    for b in made:
        b.stop(timeout=TIMEOUT)


async def results(p):
    return [r.output for r in await asyncio.wait_for(p.future, TIMEOUT)]


def test_a_flooding_task_gets_its_turn_like_any_other(held):
    async def go():
        b, run, busy = await held(max_batch=4)
        flood = [b.submit([row("flood") for _ in range(4)]) for _ in range(3)]  # 12 rows first
        others = [b.submit([row(t)]) for t in ("a", "b", "c")]
        run.gate.set()
        for p in [busy, *flood, *others]:
            await results(p)
        return run.batches

    batches = asyncio.run(go())
    assert sorted(batches[1]) == ["a", "b", "c", "flood"]  # FIFO would give four flood rows
    assert batches[2:] == [["flood"] * 4] * 2 + [["flood"] * 3]


def test_within_a_task_a_small_request_passes_a_big_one(held):
    async def go():
        b, run, busy = await held(max_batch=2)
        big = b.submit([Row("t", [1] * 3, 1) for _ in range(6)], key="t")
        small = b.submit([Row("t", [2] * 3, 1)], key="t")
        run.gate.set()
        await results(busy), await results(big), await results(small)
        return run, b

    run, _ = asyncio.run(go())
    assert len(run.batches[1]) == 2  # the big request's first row and the small request's only row


def test_a_task_over_its_share_of_the_queue_gets_task_queue_full_and_others_still_queue(held):
    async def go():
        b, run, busy = await held(max_task_queue=3, max_queue=8)
        first = b.submit([row("a"), row("a")])
        with pytest.raises(TaskQueueFull):
            b.submit([row("a"), row("a")])  # 2 + 2 > 3
        other = b.submit([row("b")])
        big = b.submit([row("c") for _ in range(5)])  # over the cap, but its task had nothing waiting
        with pytest.raises(QueueFull):
            b.submit([row("d")])  # 2 + 1 + 5 = 8 rows: the whole queue is full
        run.gate.set()
        return [await results(p) for p in (busy, first, other, big)]

    assert asyncio.run(go())[1:] == [["a", "a"], ["b"], ["c"] * 5]


def test_a_batch_stops_at_its_token_budget_and_a_lone_row_always_runs(held):
    async def go():
        b, run, busy = await held(max_batch=16, max_batch_tokens=10)
        # each row: 4 input tokens + 1 new token = 5; two fill the budget of 10
        p = b.submit([Row("t", [0] * 4, 1) for _ in range(5)])
        huge = b.submit([Row("h", [0] * 50, 1)])  # 51 > 10: alone in its batch
        run.gate.set()
        await results(busy), await results(p), await results(huge)
        return run.batches

    # round-robin: t's first row, then h (it would make the batch cost 2 x 50 + 2: a batch of its
    # own), then t's other rows two by two
    assert asyncio.run(go())[1:] == [["t"], ["h"], ["t", "t"], ["t", "t"]]


def test_batch_cost_pads_inputs_and_candidates_to_the_longest():
    cost = BatchCost()
    cost.add(Row("t", [0] * 10, 4))  # 10 + 4
    assert cost.with_row(Row("t", [0] * 2, 8)) == 2 * 10 + 2 * 8
    scored = Row("t", [0] * 3, 0, Candidates(["a", "b", "c"], [[1, 1], [2, 2, 2, 2], [1]]))
    assert BatchCost.of(scored) == 3 + 3 * 4
    cost.add(scored)
    assert (cost.rows, cost.longest_input, cost.cands, cost.longest_cand, cost.gen) == (2, 10, 3, 4, 1)


def test_rows_of_a_request_past_its_deadline_are_dropped_between_its_chunks(held):
    async def go():
        b, run, busy = await held(max_batch=1)
        late = b.submit([row("late") for _ in range(4)], deadline=time.perf_counter() + 0.2)
        on_time = b.submit([row("ok") for _ in range(2)], deadline=time.perf_counter() + 60)
        await asyncio.sleep(0.3)  # the deadline passes while the worker is still busy
        run.gate.set()
        await results(busy), await results(on_time)
        await asyncio.sleep(0.1)
        return run.batches, late, b

    batches, late, b = asyncio.run(go())
    assert batches == [["busy"], ["ok"], ["ok"]]  # none of the late rows ran
    assert not late.future.done() and b.queued_rows() == 0
