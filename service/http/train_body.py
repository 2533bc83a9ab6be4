"""The body of ``POST /tasks/{name}/train``, read by the service itself (as ``/predict``'s is, see
:mod:`.predict_body`), so every way it can be wrong gets its status in the one error shape:

    over the body limit                                    413 (while reading)
    a media type other than JSON                           415
    not UTF-8, not JSON, nested too deeply                 422
    more examples (or dev examples) than the limit         413, before a single one is validated
    steps over the limit                                   413
    a row the schema refuses (missing, not a string,
    blank, not Unicode text), fewer than 2 examples        422, naming the row: examples[3].input
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from ..settings import Settings
from .errors import ApiError, describe_validation_errors
from .predict_body import is_json, parse_json
from .schemas import TrainRequest


async def read_train_body(request: Request, settings: Settings) -> TrainRequest:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not is_json(media):
        raise ApiError(415, "unsupported_media_type", f"send application/json, not {media!r}")
    data = parse_json(await request.body())
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", f"the body must be a JSON object, not {type(data).__name__}")
    for field in ("examples", "dev"):
        rows = data.get(field)
        if isinstance(rows, list) and len(rows) > settings.max_job_examples:
            raise ApiError(
                413,
                "too_many_examples",
                f"{len(rows)} {field}; at most {settings.max_job_examples} per job (MPT_MAX_JOB_EXAMPLES)",
            )
    try:
        body = TrainRequest.model_validate(data)
    except ValidationError as e:
        raise ApiError(422, "invalid_request", _rows_named(describe_validation_errors(e.errors()))) from None
    if body.steps is not None and body.steps > settings.max_job_steps:
        raise ApiError(
            413, "too_many_steps", f"steps={body.steps}; at most {settings.max_job_steps} per job (MPT_MAX_JOB_STEPS)"
        )
    return body


def _rows_named(message: str) -> str:
    """``examples.3.input`` -> ``examples[3].input``: the row as a person counts it in the body."""
    return re.sub(r"\b(examples|dev)\.(\d+)", r"\1[\2]", message)


def train_body_openapi() -> dict:
    """The OpenAPI request body of ``POST /tasks/{name}/train`` (the route reads the body itself),
    its nested models inlined (a ``#/$defs/...`` reference would point into the whole document)."""
    schema = TrainRequest.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"$ref"} and node["$ref"].startswith("#/$defs/"):
                return inline(defs[node["$ref"].rsplit("/", 1)[1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}
