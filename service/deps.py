"""FastAPI dependencies: the service state and the admin check for mutations.

Both are ``async``: FastAPI runs plain ``def`` dependencies in a thread pool, a thread hop per
request that costs more than the work they do."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from .errors import ApiError
from .state import ServiceState


async def get_state(request: Request) -> ServiceState:
    return request.app.state.service


StateDep = Annotated[ServiceState, Depends(get_state)]


async def require_admin(request: Request, state: StateDep) -> None:
    """401 without credentials, 403 with wrong ones; open when no admin token is configured."""
    token = state.settings.admin_token
    if token is None:
        return
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(
            401, "unauthorized", "this call needs 'Authorization: Bearer <admin token>'", {"WWW-Authenticate": "Bearer"}
        )
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.get_secret_value().encode()):
        raise ApiError(403, "forbidden", "the admin token is not valid")


Admin = Depends(require_admin)
