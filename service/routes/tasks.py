"""Task factors at runtime: list, describe, upload (JSON or safetensors), replace, delete."""

from fastapi import APIRouter, Request, Response

from ..deps import Admin, MutationsDep, ViewsDep
from ..openapi import errors
from ..schemas import TaskInfo, TaskList, TaskUpload
from ..uploads import task_from_request, upload_openapi

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.get("", response_model=TaskList, responses=errors(422, 503))
async def list_tasks(views: ViewsDep) -> TaskList:
    return views.tasks()


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


@router.put(
    "/{name}",
    status_code=201,
    response_model=TaskInfo,
    dependencies=[Admin],
    openapi_extra=upload_openapi(TaskUpload),
    responses={200: {"model": TaskInfo, "description": "replaced"}} | errors(401, 403, 404, 413, 415, 422, 503),
)
async def put_task(name: str, request: Request, response: Response, mutations: MutationsDep) -> TaskInfo:
    """Create (201) or replace (200) a task."""
    info, created = await mutations.put_task(await task_from_request(request, name), create_only=False)
    response.status_code = 201 if created else 200
    return info


@router.delete("/{name}", status_code=204, dependencies=[Admin], responses=errors(401, 403, 404, 422, 503))
async def delete_task(name: str, mutations: MutationsDep) -> Response:
    await mutations.delete_task(name)
    return Response(status_code=204)
