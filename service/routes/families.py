"""Shared prompts (families): list, describe, upload (admin), delete when unused."""

from fastapi import APIRouter, Request, Response

from ..deps import Admin, MutationsDep, ViewsDep
from ..openapi import errors
from ..schemas import FamilyInfo, FamilyList, FamilyUpload
from ..uploads import family_from_request, upload_openapi

router = APIRouter(prefix="/families", tags=["families"])


@router.get("", response_model=FamilyList, responses=errors(422, 503))
async def list_families(views: ViewsDep) -> FamilyList:
    return views.families()


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
