"""Task factors at runtime: list, describe, upload (JSON or safetensors), replace, delete."""

from fastapi import APIRouter, Request, Response

from ..deps import Admin, StateDep
from ..schemas import TaskInfo, TaskList, TaskUpload
from ..uploads import task_from_request, upload_openapi

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.get("", response_model=TaskList)
async def list_tasks(state: StateDep) -> TaskList:
    return TaskList(tasks=state.list_tasks())


@router.get("/{name}", response_model=TaskInfo)
async def get_task(name: str, state: StateDep) -> TaskInfo:
    return TaskInfo(**state.task_info(name))


@router.post(
    "", status_code=201, response_model=TaskInfo, dependencies=[Admin], openapi_extra=upload_openapi(TaskUpload)
)
async def create_task(request: Request, state: StateDep) -> TaskInfo:
    """Add a task (409 if the name is taken). Live for the next request; persisted before 201."""
    state.require_ready()
    task = await task_from_request(request, None)
    await state.put_task(task, create_only=True)
    return TaskInfo(**state.task_info(task.name))


@router.put(
    "/{name}", status_code=201, response_model=TaskInfo, dependencies=[Admin], openapi_extra=upload_openapi(TaskUpload)
)
async def put_task(name: str, request: Request, response: Response, state: StateDep) -> TaskInfo:
    """Create (201) or replace (200) a task."""
    state.require_ready()
    task = await task_from_request(request, name)
    created = await state.put_task(task, create_only=False)
    response.status_code = 201 if created else 200
    return TaskInfo(**state.task_info(task.name))


@router.delete("/{name}", status_code=204, dependencies=[Admin])
async def delete_task(name: str, state: StateDep) -> Response:
    await state.delete_task(name)
    return Response(status_code=204)
