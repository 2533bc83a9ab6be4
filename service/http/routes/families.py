"""Shared prompts (families): list (paginated), describe, upload (admin), delete when unused."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from ..deps import Admin, MutationsDep, ViewsDep
from ..openapi import errors
from ..schemas import FamilyInfo, FamilyPage, FamilyUpload
from ..uploads import family_from_request, upload_openapi

router = APIRouter(prefix="/families", tags=["families"])


@router.get("", response_model=FamilyPage, responses=errors(422, 503))
async def list_families(
    views: ViewsDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="page size (at most 1,000)")] = 100,
    after: Annotated[str | None, Query(description="the `next` of the previous page")] = None,
) -> FamilyPage:
    """A page of families sorted by name; follow `next` until it is null."""
    return views.families(after, limit)


@router.get("/{name}", response_model=FamilyInfo, responses=errors(404, 422, 503))
async def get_family(name: str, views: ViewsDep) -> FamilyInfo:
    return views.family(name)


@router.post(
    "",
    status_code=201,
    response_model=FamilyInfo,
    dependencies=[Admin],
    openapi_extra=upload_openapi(FamilyUpload),
    responses=errors(401, 403, 409, 413, 415, 422, 503),
)
async def create_family(request: Request, mutations: MutationsDep) -> FamilyInfo:
    """Add a shared prompt; 409 if the name is taken or it was trained for another backbone."""
    family = await family_from_request(request, mutations.fingerprint)
    info, _ = await mutations.put_family(family, create_only=True)
    return info


@router.delete("/{name}", status_code=204, dependencies=[Admin], responses=errors(401, 403, 404, 409, 422, 503))
async def delete_family(name: str, mutations: MutationsDep) -> Response:
    await mutations.delete_family(name)
    return Response(status_code=204)
