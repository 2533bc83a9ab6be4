"""The micro-batcher on its own, with a plain function as ``run_batch`` (no model): when a batch
closes, what is dropped, draining and stopping. Waits are on events and futures with generous
timeouts; the only sleeps are the batcher's own ``max_wait``."""

import asyncio
import threading

import pytest

from service.inference.batcher import Draining, MicroBatcher, QueueFull
from service.inference.rows import Row, RowResult

TIMEOUT = 5.0  # far beyond any wait below; only reached when something is broken


def row(task: str, n: int = 3) -> Row:
    return Row(task, list(range(n)))


class RunBatch:
    """Records each batch's tasks and answers every row with its task name; ``gate`` holds a
    batch inside ``run_batch`` until the test releases it."""

    def __init__(self, gate: threading.Event | None = None, fail: Exception | None = None):
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.gate, self.fail = gate, fail

    def __call__(self, rows: list[Row]) -> list[RowResult]:
        self.batches.append([r.task for r in rows])
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(TIMEOUT)
        if self.fail is not None:
            raise self.fail
        return [RowResult(output=r.task) for r in rows]


@pytest.fixture
def batchers():
    made: list[MicroBatcher] = []

    def make(run_batch, **kw) -> MicroBatcher:
        b = MicroBatcher(run_batch, **({"max_batch": 8, "max_wait_s": 0.0, "max_queue": 64} | kw))
        b.start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop(timeout=TIMEOUT)
        assert not b.running()


async def outputs(pending) -> list[str]:
    return [r.output for r in await asyncio.wait_for(pending.future, TIMEOUT)]


def test_a_batch_closes_at_max_batch_rows_without_waiting(batchers):
    run = RunBatch()
    b = batchers(run, max_batch=2, max_wait_s=60.0)  # were max_wait awaited, the test would time out

    async def go():
        p, q = b.submit([row("a"), row("b")]), b.submit([row("c"), row("d")])
        return await outputs(p), await outputs(q)

    assert asyncio.run(go()) == (["a", "b"], ["c", "d"])
    assert run.batches == [["a", "c"], ["b", "d"]]  # two requests (queued under tasks a and c): round-robin


def test_a_batch_closes_at_max_wait_and_gathers_what_arrived_meanwhile(batchers):
    started: list[float] = []
    run = RunBatch()
    b = batchers(run, max_batch=100, max_wait_s=0.2, observe=lambda rows, t, _: started.append(t))

    async def go():
        first = row("a")
        p, q = b.submit([first]), b.submit([row("b")])
        await outputs(p), await outputs(q)
        return first.enqueued_at

    enqueued_at = asyncio.run(go())
    assert run.batches == [["a", "b"]]  # one batch, closed by the wait, not by size
    assert started[0] - enqueued_at >= 0.2


def test_rows_past_their_deadline_are_dropped_not_computed(batchers):
    gate = threading.Event()
    run = RunBatch(gate=gate)
    b = batchers(run, max_batch=1)

    async def go():
        busy = b.submit([row("busy")])
        assert await asyncio.to_thread(run.entered.wait, TIMEOUT)  # the worker is inside run_batch
        late = b.submit([row("late-1"), row("late-2")])
        late.cancel()  # what the request path does when its deadline passes
        after = b.submit([row("after")])
        gate.set()
        assert await outputs(busy) == ["busy"] and await outputs(after) == ["after"]
        return late

    late = asyncio.run(go())
    assert run.batches == [["busy"], ["after"]]  # the late rows never reached run_batch
    assert not late.future.done()


def test_batches_are_sorted_by_length_and_answers_reach_their_rows(batchers):
    seen: list[list[int]] = []

    def run_batch(rows):
        seen.append([len(r.input_ids) for r in rows])
        return [RowResult(output=f"{r.task}:{len(r.input_ids)}") for r in rows]

    b = batchers(run_batch, max_batch=8, max_wait_s=60.0)

    async def go():
        p = b.submit([row("p", 5), row("p", 1), row("p", 3), row("p", 7)])
        q = b.submit([row("q", 2), row("q", 6), row("q", 4), row("q", 0)])
        return await outputs(p), await outputs(q)

    assert asyncio.run(go()) == (["p:5", "p:1", "p:3", "p:7"], ["q:2", "q:6", "q:4", "q:0"])
    assert seen == [[0, 1, 2, 3, 4, 5, 6, 7]]


def test_a_full_queue_refuses_the_whole_request(batchers):
    gate = threading.Event()
    run = RunBatch(gate=gate)
    b = batchers(run, max_batch=1, max_queue=3)

    async def go():
        busy = b.submit([row("busy")])
        assert await asyncio.to_thread(run.entered.wait, TIMEOUT)
        queued = b.submit([row("x"), row("y")])
        with pytest.raises(QueueFull):
            b.submit([row("too"), row("many")])  # 2 + 2 rows > max_queue 3: none of them is queued
        assert b.queued_rows() == 2
        gate.set()
        return await outputs(busy), await outputs(queued)

    assert asyncio.run(go()) == (["busy"], ["x", "y"])
    assert run.batches == [["busy"], ["x"], ["y"]]


def test_a_failing_batch_fails_its_rows_and_the_batcher_goes_on(batchers):
    run = RunBatch(fail=RuntimeError("boom"))
    b = batchers(run, max_batch=4)

    async def go():
        results = await asyncio.wait_for(b.submit([row("a"), row("b")]).future, TIMEOUT)
        run.fail = None
        return results, await outputs(b.submit([row("c")]))

    failed, later = asyncio.run(go())
    assert [str(r.error) for r in failed] == ["boom", "boom"] and later == ["c"]


def test_drain_refuses_new_work_and_finishes_queued_work_then_stop_ends_the_thread(batchers):
    run = RunBatch()
    b = batchers(run, max_batch=100, max_wait_s=0.2)

    async def go():
        queued = b.submit([row("queued")])
        b.drain()
        with pytest.raises(Draining):
            b.submit([row("refused")])
        return await outputs(queued)

    assert asyncio.run(go()) == ["queued"]
    assert run.batches == [["queued"]]
    b.stop(timeout=TIMEOUT)
    assert not b.running() and b.idle()


def test_stop_finishes_what_is_queued_before_ending_the_thread(batchers):
    run = RunBatch()
    b = batchers(run, max_batch=100, max_wait_s=0.2)

    async def go():
        queued = b.submit([row("a"), row("b")])
        await asyncio.to_thread(b.stop, TIMEOUT)  # as the lifecycle stops it, off the event loop
        assert not b.running()
        return await outputs(queued)

    assert asyncio.run(go()) == ["a", "b"]
    assert run.batches == [["a", "b"]]


def test_drain_closes_the_batch_being_formed_at_once(batchers):
    """No new rows can come once draining: the rows waiting for ``max_wait`` go now, not after it."""
    run = RunBatch()
    b = batchers(run, max_batch=100, max_wait_s=60.0)  # were max_wait awaited, the test would time out

    async def go():
        queued = b.submit([row("a"), row("b")])
        await asyncio.sleep(0.05)  # the worker waits for more rows
        b.drain()
        return await outputs(queued)

    assert asyncio.run(go()) == ["a", "b"]
    assert run.batches == [["a", "b"]]


def test_stop_after_its_timeout_takes_no_new_batch_and_answers_what_is_left_draining(batchers):
    gate = threading.Event()
    run = RunBatch(gate=gate)
    b = batchers(run, max_batch=1)

    async def go():
        busy = b.submit([row("busy")])
        assert await asyncio.to_thread(run.entered.wait, TIMEOUT)  # the worker is inside run_batch
        left = b.submit([row("left-1"), row("left-2")])
        stopping = asyncio.create_task(asyncio.to_thread(b.stop, 0.05))  # its timeout passes inside the batch
        await asyncio.sleep(0.2)
        gate.set()
        await asyncio.wait_for(stopping, TIMEOUT)
        assert not b.running()
        assert await outputs(busy) == ["busy"]
        with pytest.raises(Draining):
            await asyncio.wait_for(left.future, TIMEOUT)

    asyncio.run(go())
    assert run.batches == [["busy"]]  # the rows left were never computed


POWERS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def test_a_batch_just_past_one_of_the_engines_sizes_takes_that_size_and_leaves_the_rest_first_in_line(batchers):
    gate = threading.Event()
    sizes: list[int] = []

    def run_batch(rows):
        sizes.append(len(rows))
        if len(sizes) == 1:
            assert gate.wait(TIMEOUT)
        return [RowResult(output=r.task) for r in rows]

    b = batchers(run_batch, max_batch=256, max_wait_s=0.0, max_queue=1024, batch_sizes=lambda: POWERS)

    async def go():
        first = b.submit([row("hold")])
        while not sizes:  # the worker is inside the first batch
            await asyncio.sleep(0.001)
        waiting = [b.submit([row(f"t{k % 7}")]) for k in range(130)]  # 130 rows: 2 past 128
        gate.set()
        await outputs(first)
        return [(await outputs(p))[0] for p in waiting]

    assert asyncio.run(go()) == [f"t{k % 7}" for k in range(130)]
    assert sizes == [1, 128, 2]


@pytest.mark.parametrize(
    ("waiting", "taken"),
    [(130, 128), (192, 128), (193, 193), (256, 256), (40, 32), (49, 49), (20, 20), (3, 3), (128, 128), (300, 256)],
)
def test_the_batch_limit_rounds_down_only_just_past_a_size_big_enough(waiting, taken):
    b = MicroBatcher(lambda rows: [], max_batch=256, max_wait_s=0.0, max_queue=1024, batch_sizes=lambda: POWERS)
    assert b.batch_limit(min(waiting, b.max_batch)) == taken
    plain = MicroBatcher(lambda rows: [], max_batch=256, max_wait_s=0.0, max_queue=1024)
    assert plain.batch_limit(min(waiting, plain.max_batch)) == min(waiting, 256)  # no sizes: every row waiting
