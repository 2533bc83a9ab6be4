"""Training jobs in the store (prompts_store.job_queue) on every database backend: submit with its
checks and limits, cancel, the atomic claim (processes racing), heartbeats and leases (a stale
worker's job is requeued, then failed), timeouts, and a success that writes its task in the same
transaction; the directory store says jobs need a database."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time

import pytest
import torch

from mpt_core import Family, Task
from mpt_core.errors import JobLimit, JobLost, JobsUnsupported
from prompts_store import Conflict, InvalidArtifact, NotFound, open_store
from prompts_store.jobs import JobSpec

from .helpers import FP, make_family, make_task

SPEC = JobSpec(examples=[{"input": "a cat", "target": "animal"}, ("an oak", "plant")], steps=5, seed=3)


@pytest.fixture(params=["sqlite", "postgresql"])
def jobs_url(request, tmp_path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def store(jobs_url):
    s = open_store(jobs_url)
    s.put_family(make_family())
    yield s
    s.close()


def test_submit_get_and_list_keep_the_spec_as_json(store):
    spec = JobSpec(examples=[("ünïcode ✓", "yes"), ("b", "no")], dev=[("c", "yes")], steps=7, seed=9, overwrite=True)
    jobs = [store.submit_job(f"t{i}", "fam", "factors", spec if i == 0 else SPEC) for i in range(5)]
    first = store.get_job(jobs[0].id)
    assert first.spec == spec and first.status == "queued" and first.examples == 2 and first.steps == 7
    assert (first.attempts, first.max_attempts, first.step, first.worker, first.cancel_requested) == (
        0,
        3,
        0,
        None,
        False,
    )
    assert [j.id for j in store.list_jobs()] == sorted(j.id for j in jobs) and jobs[0].id < jobs[1].id
    page = store.list_jobs(limit=2)
    assert [j.task for j in page] == ["t0", "t1"] and page[0].spec is None  # listings carry no examples
    assert [j.task for j in store.list_jobs(after=page[-1].id, limit=2)] == ["t2", "t3"]
    assert [j.task for j in store.list_jobs(task="t4")] == ["t4"] and store.list_jobs(status="running") == []
    with pytest.raises(NotFound, match="job 999 does not exist"):
        store.get_job(999)
    with pytest.raises(InvalidArtifact, match="status='done'"):
        store.list_jobs(status="done")


def test_submit_refuses_unknown_families_taken_names_and_a_second_job_for_a_task(store):
    with pytest.raises(NotFound, match="family 'nope'"):
        store.submit_job("t", "nope", "factors", SPEC)
    store.put_task(make_task("taken"))
    with pytest.raises(Conflict, match="task 'taken' already exists; set overwrite"):
        store.submit_job("taken", "fam", "factors", SPEC)
    store.submit_job("taken", "fam", "factors", JobSpec(SPEC.examples, overwrite=True))
    with pytest.raises(Conflict, match=r"job \d+ is already training task 'taken'"):
        store.submit_job("taken", "fam", "factors", JobSpec(SPEC.examples, overwrite=True))
    store.put_family(make_family("fam2"))
    with pytest.raises(Conflict, match="family 'fam2' already exists .mode full"):
        store.submit_job("fam2", "fam", "full", SPEC)
    with pytest.raises(InvalidArtifact, match="mode='group'"):
        store.submit_job("t", "fam", "group", SPEC)
    with pytest.raises(InvalidArtifact, match=r"examples\[1\].target is empty"):
        JobSpec(examples=[("a", "b"), ("c", "  ")])
    with pytest.raises(InvalidArtifact, match="at least 2 examples"):
        JobSpec(examples=[("a", "b")])


def test_concurrency_limits_count_queued_and_running_jobs(store):
    store.put_family(make_family("other"))
    store.submit_job("a", "fam", "factors", SPEC, max_active=3, max_active_per_family=2)
    store.submit_job("b", "fam", "factors", SPEC, max_active=3, max_active_per_family=2)
    with pytest.raises(JobLimit, match="family 'fam' has 2 jobs queued or running") as e:
        store.submit_job("c", "fam", "factors", SPEC, max_active=3, max_active_per_family=2)
    assert (e.value.scope, e.value.limit) == ("family", 2)
    store.submit_job("c", "other", "factors", SPEC, max_active=3, max_active_per_family=2)
    with pytest.raises(JobLimit, match="3 jobs are queued or running") as e:
        store.submit_job("d", "other", "factors", SPEC, max_active=3, max_active_per_family=2)
    assert e.value.scope == "total"
    job = store.claim_job("w")  # running still counts
    with pytest.raises(JobLimit):
        store.submit_job("d", "other", "factors", SPEC, max_active=3)
    store.finish_job(job.id, "w", "failed", error="boom")  # finished ones do not
    store.submit_job("d", "other", "factors", SPEC, max_active=3)


def test_cancel_a_queued_job_at_once_and_a_running_one_at_its_next_step(store):
    queued = store.submit_job("q", "fam", "factors", SPEC)
    running = store.submit_job("r", "fam", "factors", SPEC)
    assert store.claim_job("w").id == queued.id
    head = store.head()
    done = store.cancel_job(queued.id)  # it runs, so: requested
    assert done.status == "running" and done.cancel_requested
    assert store.job_progress(queued.id, "w", step=2, loss=1.5) is True  # the worker learns it at its next step
    ended = store.finish_job(queued.id, "w", "succeeded", tasks=[make_task("q")])  # a cancel wins over a finish
    assert ended.status == "cancelled" and not store.has_task("q") and store.head() == head
    assert store.cancel_job(running.id).status == "cancelled"  # still queued: cancelled at once
    assert store.claim_job("w") is None
    with pytest.raises(Conflict, match="already finished: cancelled"):
        store.cancel_job(running.id)
    with pytest.raises(NotFound):
        store.cancel_job(12345)


def test_success_writes_the_task_and_the_job_in_one_transaction(store):
    job = store.submit_job("new", "fam", "factors", SPEC)
    claimed = store.claim_job("w1", lease_s=30)
    assert (claimed.id, claimed.status, claimed.worker, claimed.attempts) == (job.id, "running", "w1", 1)
    head = store.head()
    assert store.job_progress(job.id, "w1", step=3, loss=0.25, dev={"score": 0.5, "bad": float("nan")}) is False
    mid = store.get_job(job.id)
    assert (mid.step, mid.loss, mid.dev) == (3, 0.25, {"score": 0.5})
    task = make_task("new", seed=5)
    done = store.finish_job(job.id, "w1", "succeeded", tasks=[task], loss=0.2, dev={"exact_match": 1.0})
    assert (done.status, done.step, done.loss, done.dev, done.error) == (
        "succeeded",
        5,
        0.2,
        {"exact_match": 1.0},
        None,
    )
    feed = store.changes(head)
    assert [(c.kind, c.name) for c in feed] == [("task", "new")] and torch.equal(feed[0].value.u, task.u)
    with pytest.raises(JobLost, match="no longer holds job"):
        store.finish_job(job.id, "w1", "succeeded", tasks=[task])


def test_a_result_that_cannot_be_written_fails_the_job_and_writes_nothing(store):
    job = store.submit_job("late", "fam", "full", SPEC)
    store.claim_job("w")
    store.put_task(make_task("late", seed=2))  # someone took the name while it trained (no overwrite)
    head = store.head()
    fam = Family("late", torch.randn(4, 6), dict(FP, d_model=6))
    done = store.finish_job(
        job.id, "w", "succeeded", family=fam, tasks=[Task("late", "late", torch.ones(4, 1), torch.ones(6, 1))]
    )
    assert done.status == "failed" and "could not be written: task 'late' already exists" in done.error
    assert store.head() == head and not store.has_family("late")  # the family of mode full was not written either
    other = store.submit_job("ok", "fam", "full", SPEC)
    store.claim_job("w")
    fam = Family("ok", torch.randn(4, 6), dict(FP, d_model=6))
    done = store.finish_job(
        other.id, "w", "succeeded", family=fam, tasks=[Task("ok", "ok", torch.ones(4, 1), torch.ones(6, 1))]
    )
    assert done.status == "succeeded" and store.get_task("ok").family == "ok" and store.has_family("ok")
    failed = store.submit_job("f", "fam", "factors", SPEC)
    store.claim_job("w")
    head = store.head()
    assert store.finish_job(failed.id, "w", "failed", error="FloatingPointError: loss became nan").status == "failed"
    assert store.head() == head and store.get_job(failed.id).error.startswith("FloatingPointError")


def test_a_worker_that_stops_heartbeating_loses_its_job_to_another_then_attempts_run_out(store):
    job = store.submit_job("t", "fam", "factors", SPEC, max_attempts=2)
    assert store.claim_job("w1", lease_s=0.3).id == job.id
    assert store.claim_job("w2", lease_s=0.3) is None  # its lease still holds
    time.sleep(0.5)
    again = store.claim_job("w2", lease_s=0.3)
    assert (again.id, again.worker, again.attempts) == (job.id, "w2", 2)
    assert "attempt 1: worker 'w1' stopped heartbeating; requeued" in again.error
    with pytest.raises(JobLost, match="it is running by worker 'w2'"):
        store.job_progress(job.id, "w1", step=4)
    with pytest.raises(JobLost):
        store.finish_job(job.id, "w1", "succeeded", tasks=[make_task("t")])
    assert not store.has_task("t")
    time.sleep(0.5)
    assert store.claim_job("w3") is None
    gone = store.get_job(job.id)
    assert gone.status == "failed" and "gave up after 2 attempt(s)" in gone.error and gone.finished_at is not None


def test_heartbeats_keep_a_job_and_a_job_past_its_timeout_fails(store):
    kept = store.submit_job("kept", "fam", "factors", SPEC)
    store.claim_job("w", lease_s=0.4)
    for _ in range(6):
        time.sleep(0.1)
        store.job_progress(kept.id, "w")
    assert store.expire_jobs() == 0 and store.get_job(kept.id).status == "running"
    slow = store.submit_job("slow", "fam", "factors", SPEC, timeout_s=0.05)
    store.claim_job("w", lease_s=0.2)
    for _ in range(5):
        time.sleep(0.1)
        store.job_progress(slow.id, "w")
        store.job_progress(kept.id, "w")
    assert store.expire_jobs() == 1
    assert store.get_job(slow.id).status == "failed" and "timed out after 0.05s" in store.get_job(slow.id).error


def test_release_requeues_without_spending_an_attempt(store):
    job = store.submit_job("t", "fam", "factors", SPEC, max_attempts=1)
    store.claim_job("w")
    back = store.release_job(job.id, "w", "worker w stopped (SIGTERM); requeued")
    assert (back.status, back.attempts, back.worker, back.error) == (
        "queued",
        0,
        None,
        "worker w stopped (SIGTERM); requeued",
    )
    assert store.claim_job("w2").attempts == 1


def _claim_at(url: str, go: float, worker: str, results) -> None:
    store = open_store(url)
    while time.time() < go:  # every child leaves this loop at the same moment
        pass
    try:
        got = []
        while (job := store.claim_job(worker)) is not None:
            got.append(job.id)
        results.put((worker, got))
    except Exception as e:  # reported to the parent, which fails the test with it
        results.put((worker, repr(e)))
    finally:
        store.close()


@pytest.mark.parametrize("jobs", [1, 6])
def test_processes_claiming_at_once_each_job_goes_to_exactly_one(store, jobs_url, jobs):
    ids = {store.submit_job(f"t{i}", "fam", "factors", SPEC).id for i in range(jobs)}
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    go = time.time() + 0.5
    procs = [ctx.Process(target=_claim_at, args=(jobs_url, go, f"w{i}", results)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    got = dict(results.get(timeout=5) for _ in procs)
    claimed = [i for ids_ in got.values() for i in ids_]
    assert sorted(claimed) == sorted(ids), got  # every job once: none twice, none lost
    assert {j.id: j.worker for j in store.list_jobs()} == {i: w for w, ids_ in got.items() for i in ids_}


def test_a_directory_store_has_no_jobs(tmp_path):
    store = open_store(tmp_path / "dir")
    for call in (
        lambda: store.submit_job("t", "fam", "factors", SPEC),
        lambda: store.get_job(1),
        lambda: store.list_jobs(),
        lambda: store.cancel_job(1),
        lambda: store.claim_job("w"),
    ):
        with pytest.raises(JobsUnsupported, match="training jobs need a database store"):
            call()


def test_a_sqlite_store_of_schema_2_gains_the_jobs_table(tmp_path):
    from prompts_store.backends.sql_schema import statements
    from prompts_store.backends.sqlite_schema import LATEST, MIGRATIONS

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as c:  # the store as mpt-serve wrote it before jobs existed
        c.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT)")
        for version, (description, script) in enumerate(MIGRATIONS[:2], 1):
            for statement in statements(script):
                c.execute(statement)
            c.execute("INSERT INTO schema_version VALUES (?, ?)", (version, description))
    with open_store(f"sqlite:///{path}") as s:
        assert s.schema_version() == LATEST == 3
        s.put_family(make_family())
        job = s.submit_job("t", "fam", "factors", SPEC)
        assert s.claim_job("w").id == job.id
