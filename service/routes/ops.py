"""Health and metrics."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from ..deps import LifecycleDep

router = APIRouter(tags=["operations"])


@router.get("/health/live")
async def live() -> dict:
    """The process is up (it may still be loading)."""
    return {"status": "alive"}


@router.get("/health/ready")
async def ready(lifecycle: LifecycleDep) -> JSONResponse:
    """200 once the model and store are loaded and warm; 503 before, while draining, or after a failed start."""
    ok, state = lifecycle.ready, lifecycle.state
    body = {"status": lifecycle.phase}
    if lifecycle.failure:
        body["error"] = lifecycle.failure
    if ok and state is not None:
        body |= state.views.counts()
    return JSONResponse(body, status_code=200 if ok else 503, headers=None if ok else {"Retry-After": "1"})


@router.get("/metrics")
async def metrics(lifecycle: LifecycleDep) -> Response:
    """Prometheus text format."""
    if lifecycle.state is not None:
        lifecycle.metrics.queued_rows.set(lifecycle.state.batcher.queued_rows())
    return Response(lifecycle.metrics.render(), media_type=lifecycle.metrics.content_type)
