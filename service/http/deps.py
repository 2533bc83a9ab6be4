"""FastAPI dependencies: what a route needs, as ``Annotated`` types, and the admin check.

A route names the component it uses (``RequestPathDep``, ``ViewsDep``, ``MutationsDep``, ``JobsDep``); asking for
one answers 503 until the server is ready. All are ``async``: FastAPI runs plain ``def``
dependencies in a thread pool, a thread hop per request that costs more than the work they do.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..inference.request_path import RequestPath
from ..runtime.jobs import JobDesk
from ..runtime.lifecycle import Lifecycle
from ..runtime.mutations import Mutations
from ..runtime.views import Views
from .errors import ApiError


async def get_lifecycle(request: Request) -> Lifecycle:
    return request.app.state.service


LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]


async def get_request_path(request: Request) -> RequestPath:
    return request.app.state.service.require_ready().requests


async def get_views(request: Request) -> Views:
    return request.app.state.service.require_ready().views


async def get_mutations(request: Request) -> Mutations:
    return request.app.state.service.require_ready().mutations


async def get_jobs(request: Request) -> JobDesk:
    return request.app.state.service.require_ready().jobs


RequestPathDep = Annotated[RequestPath, Depends(get_request_path)]
ViewsDep = Annotated[Views, Depends(get_views)]
MutationsDep = Annotated[Mutations, Depends(get_mutations)]
JobsDep = Annotated[JobDesk, Depends(get_jobs)]


bearer = HTTPBearer(auto_error=False, description="the admin token (MPT_ADMIN_TOKEN), for calls that change state")


async def require_admin(
    lifecycle: LifecycleDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """401 without bearer credentials, 403 with wrong ones; open when no admin token is configured.
    The token is compared in constant time (``hmac.compare_digest``)."""
    token = lifecycle.settings.admin_token
    if token is None:
        return
    if credentials is None:
        raise ApiError(
            401, "unauthorized", "this call needs 'Authorization: Bearer <admin token>'", {"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(credentials.credentials.strip().encode(), token.get_secret_value().encode()):
        raise ApiError(403, "forbidden", "the admin token is not valid")


Admin = Depends(require_admin)
