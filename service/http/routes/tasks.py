"""Task factors at runtime: list (paginated), describe, upload (JSON or safetensors, one or a
batch), replace, delete."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from ..deps import Admin, LifecycleDep, MutationsDep, ViewsDep
from ..openapi import errors
from ..schemas import BatchResult, BatchUpload, TaskInfo, TaskPage, TaskUpload
from ..uploads import task_from_request, tasks_from_batch_request, upload_openapi

router = APIRouter(prefix="/tasks", tags=["tasks"])

Limit = Annotated[int, Query(ge=1, le=1000, description="page size (at most 1,000)")]
After = Annotated[str | None, Query(description="the `next` of the previous page: names after this one")]


@router.get("", response_model=TaskPage, responses=errors(404, 422, 503))
async def list_tasks(
    views: ViewsDep,
    limit: Limit = 100,
    after: After = None,
    family: Annotated[str | None, Query(description="only this family's tasks")] = None,
) -> JSONResponse:
    """A page of tasks sorted by name; follow `next` until it is null. 404 for an unknown family."""
    return JSONResponse(views.tasks(after, limit, family))  # plain data, serialised once


@router.get("/{name}", response_model=TaskInfo, responses=errors(404, 422, 503))
async def get_task(name: str, views: ViewsDep) -> TaskInfo:
    return views.task(name)


@router.post(
    "",
    status_code=201,
    response_model=TaskInfo,
    dependencies=[Admin],
    openapi_extra=upload_openapi(TaskUpload),
    responses=errors(401, 403, 404, 409, 413, 415, 422, 503),
)
async def create_task(request: Request, mutations: MutationsDep) -> TaskInfo:
    """Add a task (409 if the name is taken). Live for the next request; persisted before 201."""
    info, _ = await mutations.put_task(await task_from_request(request, None), create_only=True)
    return info


@router.post(
    "/batch",
    status_code=201,
    response_model=BatchResult,
    dependencies=[Admin],
    openapi_extra=upload_openapi(BatchUpload),
    responses=errors(401, 403, 404, 409, 413, 415, 422, 503),
)
async def create_tasks(
    request: Request,
    mutations: MutationsDep,
    lifecycle: LifecycleDep,
    overwrite: Annotated[bool, Query(description="replace tasks that exist (otherwise 409)")] = False,
) -> BatchResult:
    """Add many tasks in one store transaction: all of them, or none (422 / 404 / 409 / 413 naming
    the first task at fault). Served once written."""
    tasks = await tasks_from_batch_request(request, lifecycle.settings.max_batch_tasks)
    sequence = await mutations.put_tasks(tasks, overwrite)
    return BatchResult(count=len(tasks), sequence=sequence)


@router.put(
    "/{name}",
    status_code=201,
    response_model=TaskInfo,
    dependencies=[Admin],
    openapi_extra=upload_openapi(TaskUpload),
    responses={200: {"model": TaskInfo, "description": "replaced"}} | errors(401, 403, 404, 409, 413, 415, 422, 503),
)
async def put_task(name: str, request: Request, response: Response, mutations: MutationsDep) -> TaskInfo:
    """Create (201) or replace (200) a task; 409 when its family was trained for another backbone."""
    info, created = await mutations.put_task(await task_from_request(request, name), create_only=False)
    response.status_code = 201 if created else 200
    return info


@router.delete("/{name}", status_code=204, dependencies=[Admin], responses=errors(401, 403, 404, 422, 503))
async def delete_task(name: str, mutations: MutationsDep) -> Response:
    await mutations.delete_task(name)
    return Response(status_code=204)
