"""The body of ``POST /predict``, read and parsed by the service itself rather than by FastAPI's
body parameter, so that every way a body can be wrong gets its own status in the one error shape:

    over the body limit (also when chunked)          413 (raised while reading: middleware.BodyTooLarge)
    a media type other than JSON                     415
    not UTF-8, not JSON, nested too deeply           422
    more inputs or candidates than the limits        413, before a single item is validated
    anything else the schema refuses                 422, naming the field

Parsing uses pydantic-core's JSON parser (jiter: a 16 MB text body in ~5 ms, against ~25 ms for
``json.loads``, both holding the GIL). jiter refuses a lone UTF-16 surrogate (``"\\ud800"``) outright;
such a body is parsed again with ``json.loads``, which keeps it, so the request path can answer a
422 that names the field.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pydantic_core
from fastapi import Request
from pydantic import Field, ValidationError

from ..settings import Settings
from .errors import ApiError, describe_validation_errors
from .schemas import PredictRequest


class PredictBody(PredictRequest):
    """Inputs to answer: greedy generation, or the best of the candidates (each scored)."""

    inputs: str | Annotated[list[str], Field(min_length=1)] = Field(description="one input or a list of inputs")
    candidates: Annotated[list[str], Field(min_length=1)] | None = Field(
        None, description="score these answers instead of generating; best one wins"
    )


def is_json(media_type: str) -> bool:
    return media_type in ("", "application/json") or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def parse_json(body: bytes) -> Any:
    try:
        return pydantic_core.from_json(body)
    except ValueError as fast:
        try:
            return json.loads(body)  # keeps lone surrogates, which jiter refuses; checked per field later
        except RecursionError:
            raise ApiError(422, "invalid_json", "the body is not valid JSON: nested too deeply") from None
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            raise ApiError(422, "invalid_json", f"the body is not valid JSON: {fast}") from None


def _count_over(data: dict, field: str, limit: int) -> None:
    value = data.get(field)
    if isinstance(value, list) and len(value) > limit:
        raise ApiError(
            413, "too_many_inputs" if field == "inputs" else "bad_candidates", f"{len(value)} {field}; at most {limit}"
        )


def media_type(content_type: str) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return content_type.split(";")[0].strip().lower()


def check_media_type(content_type: str) -> None:
    """415 unless the body is JSON (checked before a byte of the body is read)."""
    media = media_type(content_type)
    if not is_json(media):
        raise ApiError(415, "unsupported_media_type", f"send application/json, not {media!r}")


def parse_predict_body(body: bytes, settings: Settings) -> PredictBody:
    """The body's request, after the checks above: 422 / 413 in the one error shape."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", f"the body must be a JSON object, not {type(data).__name__}")
    # counts first: a body of a million tiny items is refused without validating them one by one
    _count_over(data, "inputs", settings.max_inputs)
    _count_over(data, "candidates", settings.max_candidates)
    try:
        return PredictBody.model_validate(data)
    except ValidationError as e:
        raise ApiError(422, "invalid_request", describe_validation_errors(e.errors())) from None


async def read_predict_body(request: Request, settings: Settings) -> PredictBody:
    check_media_type(request.headers.get("content-type", ""))
    return parse_predict_body(await request.body(), settings)


def predict_body_openapi() -> dict:
    """The OpenAPI request body of ``POST /predict`` (the route reads the body itself)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PredictBody.model_json_schema()}},
        }
    }
