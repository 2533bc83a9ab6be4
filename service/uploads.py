"""Decoding uploaded tasks and families: JSON bodies or safetensors bodies (never pickle)."""

from __future__ import annotations

import torch
from fastapi import Request
from pydantic import BaseModel, ValidationError

from prompts_store import Family, Task, family_from_bytes, task_from_bytes

from .errors import ApiError, describe_validation_errors
from .schemas import FamilyUpload, TaskUpload

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
    body, media = await request.body(), _media_type(request)
    if media == "application/json":
        up = _parse_json(TaskUpload, body)
        if name is not None and up.name is not None and up.name != name:
            raise ApiError(422, "invalid_request", f"body name {up.name!r} differs from the path's {name!r}")
        task_name = name or up.name
        if task_name is None:
            raise ApiError(422, "invalid_request", "name: the task needs a name")
        return Task(task_name, up.family, _tensor(up.u, "u"), _tensor(up.v, "v"), source=up.source or "upload")
    if media in SAFETENSORS_TYPES:
        return task_from_bytes(
            body, name=name or request.query_params.get("name"), family=request.query_params.get("family")
        )
    raise ApiError(
        415, "unsupported_media_type", f"send application/json or a safetensors body, not {media or 'nothing'!r}"
    )


async def family_from_request(request: Request, fingerprint: dict) -> Family:
    body, media = await request.body(), _media_type(request)
    if media == "application/json":
        up = _parse_json(FamilyUpload, body)
        return Family(
            up.name, _tensor(up.shared, "shared"), up.fingerprint or fingerprint, source=up.source or "upload"
        )
    if media in SAFETENSORS_TYPES:
        return family_from_bytes(body, name=request.query_params.get("name"))
    raise ApiError(
        415, "unsupported_media_type", f"send application/json or a safetensors body, not {media or 'nothing'!r}"
    )


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
