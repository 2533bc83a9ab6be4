"""Training jobs through the API: check a submission, queue it in the store, describe and cancel jobs.

The server never trains (it never imports ``training``): it checks what it can (the examples in
the server's tokenizer, the family and its backbone, the limits) and queues a row in the store;
``mpt worker`` processes claim and run it, and a succeeded job's task reaches every server through
the store's change feed, like an upload. Every store call runs off the event loop.

    submit   422 a name, or an example row (tokens over MPT_MAX_JOB_INPUT_TOKENS / _TARGET_TOKENS)
             404 an unknown family; 409 a family for another backbone, a task that exists (no
             overwrite), a task another job is training; 429 + Retry-After over MPT_MAX_JOBS or
             MPT_MAX_FAMILY_JOBS jobs queued or running; 501 a store without jobs (a directory)
    cancel   200 cancelled at once (it was queued); 202 requested (it runs: the worker stops at its
             next step); 404 unknown; 409 already finished
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Sequence

from mpt_core import check_compatible, validate_name
from prompts_store import Job, JobLimit, JobSpec, Store
from prompts_store.jobs import INITS

from ..http.errors import ApiError
from ..http.schemas import TrainExample, TrainRequest
from ..settings import Settings

RETRY_AFTER_S = 5  # a queued job of the demo's size trains in a few seconds


def example_rows(rows: Sequence[TrainExample]) -> list[tuple[str, str]]:
    return [(r.input, r.target) for r in rows]


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds")


def describe_job(job: Job, now: float) -> dict:
    """The fields of :class:`.schemas.JobInfo` as plain data."""
    return {
        "id": job.id,
        "task": job.task,
        "family": job.family,
        "mode": job.mode,
        "status": job.status,
        "step": job.step,
        "steps": job.steps,
        "loss": job.loss,
        "dev": job.dev,
        "examples": job.examples,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "worker": job.worker,
        "cancel_requested": job.cancel_requested,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "elapsed_s": round(job.elapsed_s(now), 3),
        "error": job.error,
    }


class JobDesk:
    def __init__(self, store: Store, settings: Settings, fingerprint: dict, tokenize: Callable):
        self.store, self.settings, self.fingerprint, self.tokenize = store, settings, fingerprint, tokenize

    async def submit(self, name: str, family: str, body: TrainRequest) -> Job:
        validate_name(name, "task")
        validate_name(family, "family")
        await asyncio.to_thread(self._check_tokens, body)
        spec = JobSpec(
            examples=example_rows(body.examples),
            dev=example_rows(body.dev or ()),
            steps=body.steps or self.settings.job_steps,
            seed=body.seed,
            overwrite=body.overwrite,
            init=self.settings.job_init if body.init is None else body.init,
        )
        return await asyncio.to_thread(self._submit, name, family, body.mode, spec)

    def _submit(self, name: str, family: str, mode: str, spec: JobSpec) -> Job:
        s = self.settings
        fam = self.store.get_family(family)  # 404, and a family for another backbone is 409 before it queues
        check_compatible(family, fam.fingerprint, self.fingerprint)
        if spec.init not in INITS and self.store.task_info(spec.init).family != family:  # 404 when it is no task
            raise ApiError(422, "invalid_request", f"init task {spec.init!r} is not a task of family {family!r}")
        try:
            return self.store.submit_job(
                name,
                family,
                mode,
                spec,
                max_attempts=s.job_max_attempts,
                timeout_s=s.job_timeout_s,
                max_active=s.max_jobs,
                max_active_per_family=s.max_family_jobs,
            )
        except JobLimit as e:
            setting = "MPT_MAX_JOBS" if e.scope == "total" else "MPT_MAX_FAMILY_JOBS"
            raise ApiError(
                429,
                "too_many_jobs",
                f"{e} ({setting}={e.limit}); retry when one has finished",
                {"Retry-After": str(RETRY_AFTER_S)},
            ) from None

    def _check_tokens(self, body: TrainRequest) -> None:
        """422 naming the first example whose input or target has more tokens than training takes."""
        s = self.settings
        for field, rows in (("examples", body.examples), ("dev", body.dev or ())):
            for key, limit, setting in (
                ("input", s.max_job_input_tokens, "MPT_MAX_JOB_INPUT_TOKENS"),
                ("target", s.max_job_target_tokens, "MPT_MAX_JOB_TARGET_TOKENS"),
            ):
                counts = [len(ids) for ids in self.tokenize([getattr(r, key) for r in rows])]
                over = next((i for i, n in enumerate(counts) if n > limit), None)
                if over is not None:
                    raise ApiError(
                        422,
                        "invalid_example",
                        f"{field}[{over}].{key} has {counts[over]} tokens; at most {limit} ({setting})",
                    )

    async def get(self, job_id: int) -> dict:
        job = await asyncio.to_thread(self.store.get_job, job_id)
        return describe_job(job, time.time())

    async def page(self, task: str | None, status: str | None, after: int | None, limit: int) -> dict:
        jobs = await asyncio.to_thread(self.store.list_jobs, task, status, after, limit + 1)
        now = time.time()
        more = len(jobs) > limit
        jobs = jobs[:limit]
        return {"jobs": [describe_job(j, now) for j in jobs], "next": jobs[-1].id if more else None}

    async def cancel(self, job_id: int) -> tuple[dict, bool]:
        """The job after the cancel, and whether it is cancelled already (else: requested)."""
        job = await asyncio.to_thread(self.store.cancel_job, job_id)
        return describe_job(job, time.time()), job.status == "cancelled"
