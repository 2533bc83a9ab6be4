"""Training jobs: ``POST /tasks/{name}/train`` queues one (admin), ``GET /jobs/{id}`` follows it,
``GET /jobs`` lists them (paginated), ``DELETE /jobs/{id}`` cancels (admin). ``mpt worker``
processes run them; a succeeded job's task is served like an upload (see service.runtime.jobs)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from ..deps import Admin, JobsDep, LifecycleDep
from ..openapi import errors
from ..schemas import JobAccepted, JobInfo, JobPage
from ..train_body import read_train_body, train_body_openapi

router = APIRouter(tags=["training jobs"])

MAX_ID = 2**63 - 1  # a database integer
JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="the job's id (from POST /tasks/{name}/train)")]
TOO_MANY_JOBS = {429: "too many jobs queued or running (MPT_MAX_JOBS, MPT_MAX_FAMILY_JOBS): retry after Retry-After"}
BAD_EXAMPLES = {422: "malformed body or example (named: examples[3].input), an example over the token limits, a name"}
OVER_LIMITS = {413: "body bytes, examples per job (MPT_MAX_JOB_EXAMPLES) or steps (MPT_MAX_JOB_STEPS) over the limits"}


@router.post(
    "/tasks/{name}/train",
    status_code=202,
    response_model=JobAccepted,
    dependencies=[Admin],
    openapi_extra=train_body_openapi(),
    responses=errors(
        401, 403, 404, 409, 413, 415, 422, 429, 501, 503, describe=TOO_MANY_JOBS | BAD_EXAMPLES | OVER_LIMITS
    ),
)
async def train_task(
    name: str,
    request: Request,
    jobs: JobsDep,
    lifecycle: LifecycleDep,
    family: Annotated[str, Query(description="the family to adapt from (mode full: whose P* to start from)")],
) -> JSONResponse:
    """Queue a job that trains task `name` from examples; 202 `{"job", "status": "queued"}` (and a
    `Location`). Follow it with `GET /jobs/{job}`: once it has succeeded, the task is served."""
    body = await read_train_body(request, lifecycle.settings)
    job = await jobs.submit(name, family, body)
    return JSONResponse({"job": job.id, "status": job.status}, status_code=202, headers={"Location": f"/jobs/{job.id}"})


@router.get("/jobs/{job_id}", response_model=JobInfo, responses=errors(404, 422, 501, 503))
async def get_job(job_id: JobId, jobs: JobsDep) -> JSONResponse:
    """A job's status, step / steps, loss, dev metrics, elapsed time and error."""
    return JSONResponse(await jobs.get(job_id))


@router.get("/jobs", response_model=JobPage, responses=errors(422, 501, 503))
async def list_jobs(
    jobs: JobsDep,
    task: Annotated[str | None, Query(description="only this task's jobs")] = None,
    status: Annotated[
        Literal["queued", "running", "succeeded", "failed", "cancelled"] | None,
        Query(description="only jobs in this status"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="page size (at most 1,000)")] = 100,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="the `next` of the previous page")] = None,
) -> JSONResponse:
    """A page of jobs, oldest first; follow `next` until it is null."""
    return JSONResponse(await jobs.page(task, status, after, limit))


@router.delete(
    "/jobs/{job_id}",
    response_model=JobInfo,
    dependencies=[Admin],
    responses={202: {"model": JobInfo, "description": "it is running: cancel requested, it stops at its next step"}}
    | errors(401, 403, 404, 409, 422, 501, 503, describe={409: "the job has already finished"}),
)
async def cancel_job(job_id: JobId, jobs: JobsDep) -> JSONResponse:
    """Cancel a job: 200 when it was queued (cancelled now), 202 when it runs (its worker stops at
    its next step; poll `GET /jobs/{id}`), 409 when it has already finished. Nothing is written."""
    job, cancelled = await jobs.cancel(job_id)
    return JSONResponse(job, status_code=200 if cancelled else 202)
