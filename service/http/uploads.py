"""Decoding uploaded tasks and families: JSON bodies or safetensors bodies (never pickle).

The body is read on the event loop; parsing and validating it (up to ``MPT_MAX_BODY_BYTES``, 16 MB:
thousands of tasks' numbers in a batch) runs on a worker thread (``asyncio.to_thread``), so the
loop keeps answering other requests (``/health/live`` included) meanwhile. The decoders touch no
store: they need none of the store's bounded threads. What still delays the loop is the GIL held
by one C call: pydantic parses a JSON body in one go (~60 ms for 16 MB of T5-small-shaped tasks,
a few hundred for 16 MB of 20,000 tiny ones, measured on 2 shared cores; before, the loop stood
still for the whole decode, seconds). Safetensors bodies decode in a few milliseconds.
"""

from __future__ import annotations

import asyncio
import json

import torch
from fastapi import Request
from pydantic import BaseModel, ValidationError

from mpt_core import Family, Task
from prompts_store import InvalidArtifact, family_from_bytes, read_safetensors, task_from_bytes

from .errors import ApiError, describe_validation_errors
from .schemas import BatchUpload, FamilyUpload, TaskUpload

SAFETENSORS_TYPES = {"application/octet-stream", "application/x-safetensors", "application/safetensors"}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _parse_json(model: type[BaseModel], body: bytes) -> BaseModel:
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        raise ApiError(422, "invalid_request", describe_validation_errors(e.errors())) from None


def _tensor(values: list, what: str) -> torch.Tensor:
    try:
        return torch.tensor(values, dtype=torch.float32)
    except (ValueError, TypeError):
        raise ApiError(
            422, "invalid_artifact", f"{what} must be a list of numbers or a rectangular list of lists"
        ) from None


async def task_from_request(request: Request, name: str | None) -> Task:
    """The uploaded task; ``name``: the path's (PUT), None for POST (then the body's or ``?name=``)."""
    body, media, query = await request.body(), _media_type(request), request.query_params
    return await asyncio.to_thread(_task_from_body, body, media, name, query.get("name"), query.get("family"))


def _task_from_body(body: bytes, media: str, name: str | None, query_name: str | None, family: str | None) -> Task:
    if media == "application/json":
        up = _parse_json(TaskUpload, body)
        if name is not None and up.name is not None and up.name != name:
            raise ApiError(422, "invalid_request", f"body name {up.name!r} differs from the path's {name!r}")
        task_name = name or up.name
        if task_name is None:
            raise ApiError(422, "invalid_request", "name: the task needs a name")
        return Task(task_name, up.family, _tensor(up.u, "u"), _tensor(up.v, "v"), source=up.source or "upload")
    if media in SAFETENSORS_TYPES:
        return task_from_bytes(body, name=name or query_name, family=family)
    raise ApiError(
        415, "unsupported_media_type", f"send application/json or a safetensors body, not {media or 'nothing'!r}"
    )


async def family_from_request(request: Request, fingerprint: dict) -> Family:
    body, media = await request.body(), _media_type(request)
    return await asyncio.to_thread(_family_from_body, body, media, request.query_params.get("name"), fingerprint)


def _family_from_body(body: bytes, media: str, name: str | None, fingerprint: dict) -> Family:
    if media == "application/json":
        up = _parse_json(FamilyUpload, body)
        return Family(
            up.name, _tensor(up.shared, "shared"), up.fingerprint or fingerprint, source=up.source or "upload"
        )
    if media in SAFETENSORS_TYPES:
        return family_from_bytes(body, name=name)
    raise ApiError(
        415, "unsupported_media_type", f"send application/json or a safetensors body, not {media or 'nothing'!r}"
    )


async def tasks_from_batch_request(request: Request, max_tasks: int) -> list[Task]:
    """The tasks of ``POST /tasks/batch``, every one validated (422 naming the first bad one).

    JSON: ``{"tasks": [{"name", "family", "u", "v", "source"?}, ...]}``. Safetensors: tensors
    ``u`` (n, l, r) and ``v`` (n, d, r) (or (n, l) and (n, d) for rank one), metadata ``names``
    (a JSON list of n names), ``family`` (one name for all) or ``families`` (a JSON list), and
    optionally ``source`` or ``sources``."""
    body, media = await request.body(), _media_type(request)
    return await asyncio.to_thread(_batch_from_body, body, media, max_tasks)


def _batch_from_body(body: bytes, media: str, max_tasks: int) -> list[Task]:
    if media == "application/json":
        try:
            up = BatchUpload.model_validate_json(body)
        except ValidationError as e:
            raise ApiError(422, "invalid_request", _name_batch_errors(e, body)) from None
        _check_count(len(up.tasks), max_tasks)
        return [
            Task(
                t.name,
                t.family,
                _tensor(t.u, f"task {t.name!r}: u"),
                _tensor(t.v, f"task {t.name!r}: v"),
                source=t.source or "upload",
            )
            for t in up.tasks
        ]
    if media in SAFETENSORS_TYPES:
        return _batch_from_safetensors(body, max_tasks)
    raise ApiError(
        415, "unsupported_media_type", f"send application/json or a safetensors body, not {media or 'nothing'!r}"
    )


def _check_count(n: int, max_tasks: int) -> None:
    if n > max_tasks:
        raise ApiError(413, "too_many_tasks", f"{n} tasks in one batch; at most {max_tasks}")


def _name_batch_errors(e: ValidationError, body: bytes) -> str:
    """Pydantic's message, with ``tasks.3`` completed by the task's name where the body has one."""
    message = describe_validation_errors(e.errors())
    try:
        tasks = json.loads(body)["tasks"]
        index = next(err["loc"][1] for err in e.errors() if len(err["loc"]) > 1 and err["loc"][0] == "tasks")
        name = tasks[index].get("name")
    except Exception:
        return message
    return f"task {name!r} (tasks[{index}]): {message}" if isinstance(name, str) else message


def _meta_list(meta: dict[str, str], plural: str, singular: str, n: int, default: str | None) -> list[str]:
    if plural in meta:
        try:
            values = json.loads(meta[plural])
        except json.JSONDecodeError:
            values = None
        if not isinstance(values, list) or len(values) != n or not all(isinstance(x, str) for x in values):
            raise InvalidArtifact(f"batch: metadata {plural!r} must be a JSON list of {n} strings")
        return values
    if singular in meta or default is not None:
        return [meta.get(singular, default)] * n
    raise InvalidArtifact(f"batch: metadata needs {singular!r} (one for all) or {plural!r} (a JSON list)")


def _batch_from_safetensors(body: bytes, max_tasks: int) -> list[Task]:
    tensors, meta = read_safetensors(body, "batch")
    if set(tensors) != {"u", "v"}:
        raise InvalidArtifact(f"batch: expected tensors ['u', 'v'], found {sorted(tensors)}")
    u, v = tensors["u"], tensors["v"]
    if u.ndim not in (2, 3) or v.ndim != u.ndim or u.shape[0] != v.shape[0]:
        raise InvalidArtifact(
            "batch: u must be (n, l, r) and v (n, d, r) (or (n, l) and (n, d)); "
            f"got {tuple(u.shape)} and {tuple(v.shape)}"
        )
    n = u.shape[0]
    _check_count(n, max_tasks)
    names = _meta_list(meta, "names", "name", n, None) if "names" in meta else None
    if names is None:
        raise InvalidArtifact("batch: metadata 'names' (a JSON list of the n task names) is required")
    families = _meta_list(meta, "families", "family", n, None)
    sources = _meta_list(meta, "sources", "source", n, "upload")
    return [Task(names[i], families[i], u[i], v[i], source=sources[i]) for i in range(n)]


def upload_openapi(schema: type[BaseModel]) -> dict:
    """OpenAPI request body of an endpoint that reads JSON or safetensors itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema.model_json_schema()},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }
