"""What the OpenAPI document says about errors, names and credentials, so it matches behaviour.

Routes declare the statuses they can answer with ``responses=errors(...)``: each is the one error
body of the API (``{"error": {"code", "message"}}``) with the headers it carries (``Retry-After``
on 429 and 503, ``WWW-Authenticate`` on 401). :func:`install_openapi` then states what the route
signatures do not: the name pattern of every ``name``/``task``/``family``/``after`` parameter, and the
bearer credentials of admin routes only while an admin token is configured.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from mpt_core.names import NAME_PATTERN


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable", examples=["not_found"])
    message: str = Field(description="for people: what was wrong, naming the bad value")


class ErrorBody(BaseModel):
    """Every error of the API has this body."""

    error: ErrorDetail


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}

ERRORS: dict[int, tuple[str, dict]] = {
    400: ("malformed request", {}),
    401: (
        "an admin call without credentials (when MPT_ADMIN_TOKEN is set)",
        {"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    403: ("an admin call with a wrong token", {}),
    404: ("no such task or family", {}),
    409: ("the name is taken, the family is still used, or it was trained for another backbone", {}),
    413: (
        "over a limit: body bytes, inputs, candidates, characters or tokens per text, new tokens, or the "
        "request's work budget (limits in tokens cannot be stated in this schema)",
        {},
    ),
    415: ("a body that is neither JSON nor (for uploads) safetensors", {}),
    422: ("malformed input: JSON, fields, names, shapes, dtypes, non-finite values, text that is not Unicode", {}),
    429: ("this task has too many rows waiting (fairness between tasks): retry after Retry-After", RETRY_AFTER),
    501: ("training jobs need a database store (SQLite or PostgreSQL); this server's store is a directory", {}),
    503: (
        "not ready (starting, draining), the queue is full, or the store is busy or unreachable: retry after "
        "Retry-After",
        RETRY_AFTER,
    ),
    504: ("no answer within the request deadline (MPT_REQUEST_TIMEOUT_S)", {}),
}


def errors(*statuses: int, describe: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route that can answer these error statuses (``describe``: what a status
    means on this route, where it differs from the usual meaning)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, headers = ERRORS[status]
        description = (describe or {}).get(status, description)
        out[status] = {"model": ErrorBody, "description": description} | ({"headers": headers} if headers else {})
    return out


NAME_PARAMETERS = {"name", "task", "family", "after"}  # "after": a listing cursor is a name


def install_openapi(app: FastAPI, admin_token_set: bool) -> None:
    """Generate the document once, then state name patterns and (only with a token) the admin credentials."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            for operations in doc.get("paths", {}).values():
                for operation in operations.values():
                    _name_patterns(operation)
                    if not admin_token_set:
                        operation.pop("security", None)
                        for status in ("401", "403"):
                            operation.get("responses", {}).pop(status, None)
            if not admin_token_set:
                doc.get("components", {}).pop("securitySchemes", None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _name_patterns(operation: dict) -> None:
    for param in operation.get("parameters", ()):
        if param.get("name") not in NAME_PARAMETERS:
            continue
        schema = param.get("schema", {})
        for variant in schema.get("anyOf", [schema]):  # an optional parameter is anyOf [string, null]
            if variant.get("type") == "string":
                variant.setdefault("pattern", NAME_PATTERN)
