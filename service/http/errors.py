"""The one error shape of the API: ``{"error": {"code": ..., "message": ...}}``, and the
mapping of every exception the app can meet onto it."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from prompts_store import Conflict, InvalidArtifact, InvalidName, JobsUnsupported, NotFound, StoreError

log = logging.getLogger("mpt.service")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_body(code: str, message: str) -> bytes:
    """THE error body of the API, as sent (compact UTF-8 JSON, as Starlette's ``JSONResponse`` renders)."""
    return json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False, separators=(",", ":")).encode()


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """THE error response of the API; also an ASGI app, so middleware answers with it too."""
    return Response(error_body(code, message), status_code=status, headers=headers, media_type="application/json")


def error_of(e: Exception) -> tuple[int, str, str, dict[str, str]]:
    """(status, code, message, headers) of what a request raised: the mapping the handlers below
    install, for the paths that answer without them (``predict_asgi``)."""
    if isinstance(e, ApiError):
        return e.status, e.code, e.message, e.headers
    if isinstance(e, StoreError):
        return store_status(e), e.code, str(e), {}
    log.error("unhandled error", exc_info=e)
    return 500, "internal", f"internal error: {type(e).__name__}", {}


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_validation_errors(errors: Sequence[Mapping], limit: int | None = 5) -> str:
    """THE one-line form of pydantic errors, naming each bad value: ``where=value: message; ...``.

    Locations drop FastAPI's ``body`` prefix; a missing field or a whole-object error names no
    value (the value would be the whole input, which may hold secrets)."""
    parts = []
    for err in list(errors)[:limit]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        if where and err.get("type") != "missing" and "input" in err:
            where = f"{where}={_short(err['input'])}"
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid input"


STORE_STATUS = {InvalidName: 422, InvalidArtifact: 422, NotFound: 404, Conflict: 409, JobsUnsupported: 501}
STORE_RETRY_AFTER_S = 1  # a store that is busy or unreachable: ask the client to come back


def store_status(e: StoreError) -> int:
    """The status of a store error: the request's fault (422 / 404 / 409), or else the store's
    state (503: a lock held past the busy timeout, a database that cannot be reached, a closed
    store, a change feed that cannot answer), which a retry may find changed."""
    for cls, status in STORE_STATUS.items():
        if isinstance(e, cls):
            return status
    return 503


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    429: "too_many_requests",
}


def _method_table(app) -> list[tuple[re.Pattern, bool, set[str]]]:
    """(path regex, whether the path is a template, methods) of every documented path, built once
    from the OpenAPI document."""
    table = getattr(app.state, "method_table", None)
    if table is None:
        table = []
        for template, operations in app.openapi().get("paths", {}).items():
            parts = re.split(r"\{[^/}]+\}", template)
            regex = re.compile("[^/]+".join(re.escape(part) for part in parts))
            table.append((regex, len(parts) > 1, {m.upper() for m in operations}))
        app.state.method_table = table
    return table


def allowed_methods(request: Request) -> str | None:
    """Every method the API documents at this path (Starlette's 405 names only the first matching
    route's, while ``GET``, ``PUT`` and ``DELETE /tasks/{name}`` are three routes); None when the
    path is not documented. A documented literal path (``/tasks/batch``) is its own resource: its
    methods alone, not those of a template it also fits (``/tasks/{name}``), as the document says."""
    path = request.scope.get("path", "")
    matches = [(templated, methods) for rx, templated, methods in _method_table(request.app) if rx.fullmatch(path)]
    literal = [methods for templated, methods in matches if not templated]
    methods = set().union(*(literal or [m for _, m in matches]))
    return ", ".join(sorted(methods)) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, e: ApiError) -> Response:
        return error_response(e.status, e.code, e.message, e.headers)

    @app.exception_handler(StoreError)
    async def _store(_: Request, e: StoreError) -> Response:
        status = store_status(e)
        if status == 503:
            log.warning("store unavailable: %s", e)
            return error_response(503, e.code, str(e), {"Retry-After": str(STORE_RETRY_AFTER_S)})
        return error_response(status, e.code, str(e))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError) -> Response:
        return error_response(422, "invalid_request", describe_validation_errors(e.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> Response:
        headers = dict(getattr(e, "headers", None) or {})
        if e.status_code == 405:
            headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
        return error_response(e.status_code, _HTTP_CODES.get(e.status_code, "http_error"), str(e.detail), headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, e: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal", f"internal error: {type(e).__name__}")
