"""The training worker (training.worker) in-process on the tiny T5 and a SQLite store: a job gives
the factors of `mpt train adapt` on the same data and seed bit for bit, and ends cancelled, failed,
timed out or back in the queue (a stopping worker) without writing anything."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch

from mpt_cli.main import main as mpt
from mpt_core import Family, Task
from prompts_store import open_store
from prompts_store.jobs import JobSpec
from training.config import WorkerConfig
from training.worker import Worker

L = 4


def seeded_store(url: str, backbone) -> object:
    """Family 'src' (l=4) with two source tasks, so `--init auto` averages them."""
    gen = torch.Generator().manual_seed(0)
    d = backbone.d_model
    store = open_store(url)
    store.put_family(Family("src", torch.randn(L, d, generator=gen), backbone.fingerprint))
    for name in ("alpha", "beta"):
        u, v = 1 + 0.1 * torch.randn(L, 1, generator=gen), 1 + 0.1 * torch.randn(d, 1, generator=gen)
        store.put_task(Task(name, "src", u, v, created_at="2026-01-01T00:00:00+00:00"))
    return store


def rows(task, split: str, n: int) -> list[dict]:
    return [{"input": e.input, "target": e.target} for e in task.split(split)[:n]]


def worker(backbone, store, **cfg) -> Worker:
    return Worker(backbone, store, WorkerConfig(**({"worker_id": "w", "progress_s": 0.05} | cfg)))


def test_a_job_gives_the_factors_of_mpt_train_adapt_bit_for_bit(backbone, tiny_dir, toy_tasks, tmp_path, capsys):
    task = toy_tasks["temperature"]
    train, dev = rows(task, "train", 16), rows(task, "dev", 8)
    data = tmp_path / "data"
    data.mkdir()
    for split, examples in (("train", train), ("dev", dev)):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in examples))
    cli_url, job_url = f"sqlite:///{tmp_path / 'cli.db'}", f"sqlite:///{tmp_path / 'job.db'}"
    seeded_store(cli_url, backbone).close()
    argv = ["train", "adapt", "--model", tiny_dir, "--device", "cpu", "--task", f"heat={data}", "--store", cli_url]
    argv += ["--family", "src", "--mode", "factors", "--steps", "12", "--seed", "7", "--out", tmp_path / "run"]
    assert mpt([str(a) for a in argv]) == 0
    report = json.loads(capsys.readouterr().out)["results"]["heat"]

    store = seeded_store(job_url, backbone)
    job = store.submit_job("heat", "src", "factors", JobSpec(examples=train, dev=dev, steps=12, seed=7))
    ended = worker(backbone, store, max_jobs=1).run_job(store.claim_job("w"))
    assert ended.status == "succeeded" and ended.step == ended.steps == 12 and ended.error is None
    with open_store(cli_url) as cli:
        want = cli.get_task("heat")
    got = store.get_task("heat")
    assert torch.equal(got.u, want.u) and torch.equal(got.v, want.v) and got.source == want.source
    assert ended.loss == pytest.approx(report["final_train_loss"], abs=0)
    metrics = report["metrics"]["heat"]
    assert ended.dev == {k: v for k, v in metrics.items() if k != "split"} and "rank_accuracy" in ended.dev
    assert store.get_job(job.id).status == "succeeded"


def _run_in_thread(w: Worker, job) -> tuple[threading.Thread, list]:
    out = []
    thread = threading.Thread(target=lambda: out.append(w.run_job(job)))
    thread.start()
    return thread, out


def _wait_for_step(store, job_id: int, step: int = 1) -> None:
    deadline = time.monotonic() + 60
    while store.get_job(job_id).step < step:
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.02)


def test_cancel_a_running_job_stops_it_at_its_next_step(backbone, toy_tasks, tmp_path):
    store = seeded_store(f"sqlite:///{tmp_path / 's.db'}", backbone)
    job = store.submit_job("heat", "src", "factors", JobSpec(rows(toy_tasks["temperature"], "train", 8), steps=5000))
    head = store.head()
    thread, out = _run_in_thread(worker(backbone, store), store.claim_job("w"))
    _wait_for_step(store, job.id)
    assert store.cancel_job(job.id).cancel_requested
    thread.join(timeout=60)
    ended = out[0]
    assert ended.status == "cancelled" and ended.step < 5000 and ended.finished_at is not None
    assert store.head() == head and not store.has_task("heat")


def test_a_stopping_worker_gives_its_job_back_and_another_finishes_it(backbone, toy_tasks, tmp_path):
    store = seeded_store(f"sqlite:///{tmp_path / 's.db'}", backbone)
    job = store.submit_job("heat", "src", "factors", JobSpec(rows(toy_tasks["temperature"], "train", 8), steps=5000))
    first = worker(backbone, store)
    thread, out = _run_in_thread(first, store.claim_job("w"))
    _wait_for_step(store, job.id)
    first.stop.set()  # what SIGTERM does in `mpt worker`
    thread.join(timeout=60)
    back = out[0]
    assert (back.status, back.attempts, back.worker) == ("queued", 0, None) and "stopped at step" in back.error
    store.cancel_job(job.id)


def test_a_run_that_fails_or_times_out_ends_failed_and_writes_nothing(backbone, toy_tasks, tmp_path):
    store = seeded_store(f"sqlite:///{tmp_path / 's.db'}", backbone)
    other = dict(backbone.fingerprint, model_id="another-model", embedding_sha256="0" * 16)
    store.put_family(Family("alien", torch.randn(L, backbone.d_model), other))
    examples = rows(toy_tasks["temperature"], "train", 8)
    bad = store.submit_job("heat", "alien", "factors", JobSpec(examples, steps=3))
    ended = worker(backbone, store).run_job(store.claim_job("w"))
    assert ended.status == "failed" and ended.error.startswith("IncompatibleBackbone") and not store.has_task("heat")
    assert store.get_job(bad.id).finished_at is not None
    slow = store.submit_job("heat", "src", "factors", JobSpec(examples, steps=5000), timeout_s=0.5)
    ended = worker(backbone, store).run_job(store.claim_job("w"))
    assert ended.status == "failed" and ended.error.startswith("timed out after 0.5s") and not store.has_task("heat")
    assert store.get_job(slow.id).step > 0


def test_mode_full_writes_a_family_of_one(backbone, toy_tasks, tmp_path):
    store = seeded_store(f"sqlite:///{tmp_path / 's.db'}", backbone)
    store.submit_job("heat", "src", "full", JobSpec(rows(toy_tasks["temperature"], "train", 8), steps=3))
    ended = worker(backbone, store).run_job(store.claim_job("w"))
    assert ended.status == "succeeded"
    assert store.get_task("heat").family == "heat" and store.get_family("heat").length == L
    assert not torch.equal(store.get_family("heat").shared, store.get_family("src").shared)


def test_the_warm_up_changes_no_weight_and_no_random_state(backbone):
    from training.warm_up import warm_up

    from ..conftest import assert_bit_identical, weights_snapshot

    before, rng = weights_snapshot(backbone.model), torch.get_rng_state()
    assert warm_up(backbone) > 0
    assert_bit_identical(before, backbone.model)
    assert torch.equal(torch.get_rng_state(), rng)


def test_a_running_worker_warms_up_then_runs_its_jobs(backbone, toy_tasks, tmp_path):
    store = seeded_store(f"sqlite:///{tmp_path / 's.db'}", backbone)
    job = store.submit_job("heat", "src", "factors", JobSpec(rows(toy_tasks["temperature"], "train", 8), steps=3))
    w = worker(backbone, store, max_jobs=1, poll_s=0.01)
    assert not w.ready.is_set() and w.run() == 1 and w.ready.is_set()
    assert store.get_job(job.id).status == "succeeded" and store.has_task("heat")


def test_a_database_away_for_a_while_delays_the_progress_writes_not_the_training(backbone, toy_tasks, tmp_path):
    """Another writer holds the SQLite store's write lock for a second while the job trains: the
    progress writes wait and fail (heartbeat thread), training goes on, and the job succeeds."""
    import sqlite3

    from prompts_store.backends.sqlite_store import SQLiteStore

    seeded_store(f"sqlite:///{tmp_path / 's.db'}", backbone).close()
    store = SQLiteStore(tmp_path / "s.db", busy_timeout_s=0.2)
    job = store.submit_job("heat", "src", "factors", JobSpec(rows(toy_tasks["temperature"], "train", 8), steps=300))
    claimed = store.claim_job("w")
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # the database is 'away' for writers
    release = threading.Timer(1.0, lambda: other.execute("COMMIT"))
    release.start()
    try:
        ended = worker(backbone, store).run_job(claimed)
    finally:
        release.join()
        other.close()
    assert ended is not None and ended.status == "succeeded" and ended.step == 300
    assert store.get_job(job.id).status == "succeeded" and store.has_task("heat")


@pytest.mark.parametrize("verbose", [False, True])
def test_a_job_shows_trainings_own_output_only_when_verbose(backbone, toy_tasks, tmp_path, capfd, verbose):
    """Turned off in training itself, not by swapping the process's sys.stderr from a thread."""
    import sys

    store = seeded_store(f"sqlite:///{tmp_path / 's.db'}", backbone)
    store.submit_job("heat", "src", "factors", JobSpec(rows(toy_tasks["temperature"], "train", 8), steps=3))
    stderr = sys.stderr
    assert worker(backbone, store, verbose=verbose).run_job(store.claim_job("w")).status == "succeeded"
    assert sys.stderr is stderr
    assert ("trainable parameters" in capfd.readouterr().err) is verbose
