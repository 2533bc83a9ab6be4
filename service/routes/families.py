"""Shared prompts (families): list, describe, upload (admin), delete when unused."""

from fastapi import APIRouter, Request, Response

from ..deps import Admin, StateDep
from ..schemas import FamilyInfo, FamilyList, FamilyUpload
from ..uploads import family_from_request, upload_openapi

router = APIRouter(prefix="/families", tags=["families"])


@router.get("", response_model=FamilyList)
async def list_families(state: StateDep) -> FamilyList:
    return FamilyList(families=state.list_families())


@router.get("/{name}", response_model=FamilyInfo)
async def get_family(name: str, state: StateDep) -> FamilyInfo:
    return FamilyInfo(**state.family_info(name))


@router.post(
    "", status_code=201, response_model=FamilyInfo, dependencies=[Admin], openapi_extra=upload_openapi(FamilyUpload)
)
async def create_family(request: Request, state: StateDep) -> FamilyInfo:
    """Add a shared prompt; 409 if the name is taken or it was trained for another backbone."""
    state.require_ready()
    family = await family_from_request(request, state.fingerprint)
    await state.put_family(family, create_only=True)
    return FamilyInfo(**state.family_info(family.name))


@router.delete("/{name}", status_code=204, dependencies=[Admin])
async def delete_family(name: str, state: StateDep) -> Response:
    await state.delete_family(name)
    return Response(status_code=204)
