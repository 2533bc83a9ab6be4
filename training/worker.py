"""The training worker: claims jobs from the store and runs each through the same code as
``mpt train adapt`` (:func:`training.stages.adapt.adapt`, the job's mode, steps and seed, every other
setting the command's default), so a job's factors are the command's, bit for bit.

    start: one throwaway training step (training.warm_up), so no job pays the process's first-step costs
    loop:  claim (atomic; expires stale jobs first)  ->  TaskData from the job's examples
           -> adapt(..., on_step=progress, write=keep)  ->  finish: the task is written in the
              same transaction that marks the job succeeded (or the job fails / is cancelled)

While a job runs, a heartbeat thread is its one writer: it writes the step, loss and dev metrics
that the step hook hands it (at most every ``progress_s``), renews the lease every ``lease_s / 3``
otherwise (so slow phases, such as the final evaluation, never lose it) and learns of cancel
requests, so training never waits on the database. The step hook stops the run by raising at the
next step when a cancel was asked, the job's timeout passed, the job was lost (requeued after a
lost lease) or the worker is stopping (SIGTERM: the job goes back to the queue without spending
an attempt).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

from mpt_core import Family, Task
from mpt_core.backbone import Backbone
from mpt_core.errors import JobLost
from prompts_store import Store, StoreError
from prompts_store.jobs import Job

from .config import AdaptConfig, TrainConfig, WorkerConfig
from .data.examples import Example, TaskData
from .stages.adapt import adapt
from .warm_up import warm_up

log = logging.getLogger("mpt.worker")


class Stop(Exception):
    """Raised by the step hook to end a run early; ``status`` says how the job ends."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status  # "cancelled", "failed", "released" (back to the queue) or "lost"


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def task_data(job: Job) -> TaskData:
    """The job's examples as the task data ``mpt train adapt`` reads from ``train.jsonl`` / ``dev.jsonl``."""
    splits = {"train": [Example(x, y) for x, y in job.spec.examples]}
    if job.spec.dev:
        splits["dev"] = [Example(x, y) for x, y in job.spec.dev]
    return TaskData(job.task, splits)


def train_configs(job: Job) -> tuple[TrainConfig, AdaptConfig]:
    """The job's steps, seed, mode and factor init; everything else ``mpt train adapt``'s defaults."""
    return TrainConfig(steps=job.spec.steps, seed=job.spec.seed), AdaptConfig(mode=job.mode, factor_init=job.spec.init)


class Worker:
    def __init__(self, backbone: Backbone, store: Store, cfg: WorkerConfig, stop: threading.Event | None = None):
        self.backbone, self.store, self.cfg = backbone, store, cfg
        self.id = cfg.worker_id or default_worker_id()
        self.stop = stop or threading.Event()
        self.ready = threading.Event()  # set once warmed up, as it starts claiming

    def run(self) -> int:
        """Warm up, then claim and run jobs until stopped (or ``max_jobs`` ran); returns how many ran."""
        self.warm_up()
        done = 0
        while not self.stop.is_set() and (self.cfg.max_jobs is None or done < self.cfg.max_jobs):
            try:
                job = self.store.claim_job(self.id, self.cfg.lease_s)
            except StoreError as e:  # the database is away: say so, keep trying
                log.warning("worker %s: cannot claim a job: %s", self.id, e)
                job = None
            if job is None:
                self.stop.wait(self.cfg.poll_s)
                continue
            self.run_job(job)
            done += 1
        return done

    def warm_up(self) -> None:
        """A throwaway step and evaluation (:mod:`.warm_up`): the first job does not pay the process's
        one-time costs. A failure is logged, not raised: the jobs will say what is wrong."""
        try:
            seconds = warm_up(self.backbone)
            log.info("worker %s: warmed up in %.2fs", self.id, seconds)
        except Exception as e:
            log.warning("worker %s: warm-up failed (%s: %s); claiming jobs anyway", self.id, type(e).__name__, e)
        self.ready.set()

    def run_job(self, job: Job) -> Job | None:
        """Train one claimed job and finish it; the job as it ended (None when it was lost)."""
        t0 = time.perf_counter()
        kept: list[tuple[list[Family], list[Task]]] = []
        hook = StepHook(self, job)
        cfg, acfg = train_configs(job)
        try:
            with self._heartbeat(job, hook):
                report = adapt(
                    self.backbone,
                    [task_data(job)],
                    self.store,
                    job.family,
                    cfg,
                    acfg,
                    None,  # nothing on disk: a requeued job starts over, so a checkpoint would never be read
                    overwrite=job.spec.overwrite,
                    on_step=hook,
                    write=lambda families, tasks: kept.append((families, tasks)),
                    progress=self.cfg.verbose,  # off: one log line per job
                )
        except Stop as e:
            ended = self._stopped(job, e)
        except JobLost as e:
            log.warning("job %d task=%s: lost (%s); its result is dropped", job.id, job.task, e)
            return None
        except Exception as e:  # the run failed: the job says why, nothing is written
            ended = self._finish_quietly(job, "failed", f"{type(e).__name__}: {e}", hook)
        else:
            ended = self._succeeded(job, report["results"][job.task], *kept[0])
        if ended is not None:
            self._log(ended, time.perf_counter() - t0)
        return ended

    # ---- pieces -----------------------------------------------------------------------------------
    def _succeeded(self, job: Job, result: dict, families: list[Family], tasks: list[Task]) -> Job | None:
        """Write the trained task and mark the job succeeded, in one transaction. When the database
        cannot be reached the job is not failed (its training was fine): its lease runs out and the
        claim rules requeue it."""
        family = None
        if families:  # modes full and prompt: the family of one task
            (family,) = families
        try:
            return self.store.finish_job(
                job.id,
                self.id,
                "succeeded",
                tasks=tasks,
                family=family,
                loss=result["final_train_loss"],
                dev=result["metrics"].get(job.task),  # on dev (the job has no test split); {} without dev
            )
        except JobLost as e:
            log.warning("job %d task=%s: lost (%s); its result is dropped", job.id, job.task, e)
        except StoreError as e:
            log.error(
                "job %d task=%s: trained, but could not be recorded (%s); it will be requeued", job.id, job.task, e
            )
        return None

    def _stopped(self, job: Job, stop: Stop) -> Job | None:
        if stop.status == "lost":
            log.warning("job %d task=%s: %s; its result is dropped", job.id, job.task, stop)
            return None
        if stop.status == "released":
            with contextlib.suppress(JobLost):
                return self.store.release_job(job.id, self.id, str(stop))
            return None
        return self._finish_quietly(job, stop.status, str(stop), None)

    def _finish_quietly(self, job: Job, status: str, error: str, hook: StepHook | None) -> Job | None:
        try:
            loss = hook.loss if hook is not None else None
            return self.store.finish_job(job.id, self.id, status, error=error, loss=loss)
        except JobLost as e:
            log.warning("job %d task=%s: lost (%s)", job.id, job.task, e)
        except StoreError as e:  # the database is away: the lease runs out and the claim rules decide
            log.error("job %d task=%s: could not record %s (%s): %s", job.id, job.task, status, error, e)
        return None

    @contextlib.contextmanager
    def _heartbeat(self, job: Job, hook: StepHook) -> Iterator[None]:
        """The job's one writer while it trains, a thread: it writes the progress the step hook hands
        it (at most every ``progress_s``) and otherwise renews the lease every ``lease_s / 3``, and
        learns of cancels and of a lost job. Training never waits on the database, and a database
        away for a while (StoreError) only delays the writes: the lease rules decide."""
        done = threading.Event()

        def beat() -> None:
            while not done.is_set():
                hook.due.wait(self.cfg.lease_s / 3)
                hook.due.clear()
                step, loss, dev = hook.progress
                try:
                    if self.store.job_progress(job.id, self.id, step=step, loss=loss, dev=dev):
                        hook.cancelled = True
                except JobLost as e:
                    hook.lost = str(e)
                    return
                except StoreError as e:
                    log.warning("job %d: progress / heartbeat not written: %s", job.id, e)

        thread = threading.Thread(target=beat, name=f"mpt-heartbeat-{job.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            hook.due.set()
            thread.join()

    def _log(self, job: Job, seconds: float) -> None:
        dev = job.dev or {}
        scores = " ".join(f"{k}={dev[k]:.3f}" for k in ("exact_match", "rank_accuracy") if k in dev)
        loss = f" loss={job.loss:.4f}" if job.loss is not None else ""
        line = (
            f"job {job.id} task={job.task} family={job.family} mode={job.mode} {job.status} in {seconds:.1f}s "
            f"(step {job.step}/{job.steps}{loss}{' dev ' + scores if scores else ''}; "
            f"attempt {job.attempts}/{job.max_attempts}; worker {self.id})"
        )
        if job.error and job.status != "succeeded":
            line += f": {job.error}"
        (log.info if job.status in ("succeeded", "queued", "cancelled") else log.warning)(line)


class StepHook:
    """``on_step`` of a job's run: hands its progress to the heartbeat thread (at most every
    ``progress_s``, and at every dev evaluation and the last step) and stops the run, by raising, for
    the reasons that thread or the clock give. It never writes to the store itself."""

    def __init__(self, worker: Worker, job: Job):
        self.worker, self.job = worker, job
        self.started = time.monotonic()
        self.last_handed = 0.0
        self.due = threading.Event()  # progress to write (the heartbeat thread waits on it)
        self.progress: tuple[int | None, float | None, dict | None] = (None, None, None)  # step, loss, dev
        self.cancelled = False
        self.lost: str | None = None
        self.loss: float | None = None

    def __call__(self, step: int, steps: int, loss: float, logs: dict, dev: dict | None) -> None:
        w, job = self.worker, self.job
        self.loss = loss
        now = time.monotonic()
        if dev is not None or step == steps or now - self.last_handed >= w.cfg.progress_s:
            self.last_handed = now
            self.progress = (step, loss, dev if dev is not None else self.progress[2])  # one assignment: atomic
            self.due.set()
        if self.lost:
            raise Stop("lost", self.lost)
        if self.cancelled:
            raise Stop("cancelled", f"cancelled at step {step}/{steps}")
        if now - self.started > job.timeout_s:
            raise Stop("failed", f"timed out after {job.timeout_s:g}s (at step {step}/{steps})")
        if w.stop.is_set():
            raise Stop("released", f"worker {w.id} stopped at step {step}/{steps}; requeued")
        if w.cfg.yield_ms:
            time.sleep(w.cfg.yield_ms / 1000)
