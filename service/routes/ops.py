"""Health and metrics."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from ..deps import StateDep

router = APIRouter(tags=["operations"])


@router.get("/health/live")
async def live() -> dict:
    """The process is up (it may still be loading)."""
    return {"status": "alive"}


@router.get("/health/ready")
async def ready(state: StateDep) -> JSONResponse:
    """200 once the model and store are loaded and warm; 503 before, while draining, or after a failed start."""
    body = {"status": state.phase}
    if state.failure:
        body["error"] = state.failure
    if state.ready and state.table is not None:
        body |= {"tasks": len(state.table.tasks), "families": len(state.table.families)}
    return JSONResponse(
        body, status_code=200 if state.ready else 503, headers=None if state.ready else {"Retry-After": "1"}
    )


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    """Prometheus text format."""
    state.refresh_gauges()
    if state.batcher is not None:
        state.metrics.queued_rows.set(state.batcher.queued_rows())
    return Response(state.metrics.render(), media_type=state.metrics.content_type)
