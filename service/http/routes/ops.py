"""Health and metrics."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from ..deps import LifecycleDep

router = APIRouter(tags=["operations"])


class Live(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str  # starting, ready, draining or failed
    error: str | None = None
    tasks: int | None = None
    families: int | None = None


NOT_READY = {
    503: {
        "model": Readiness,
        "description": "starting, draining (after SIGTERM) or failed to start: retry after Retry-After",
        "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
    }
}


@router.get("/health/live", response_model=Live)
async def live() -> dict:
    """The process is up (it may still be loading, or draining)."""
    return {"status": "alive"}


@router.get("/health/ready", response_model=Readiness, response_model_exclude_none=True, responses=NOT_READY)
async def ready(lifecycle: LifecycleDep) -> JSONResponse:
    """200 once the model and store are loaded and warm; 503 before, while draining, or after a failed start."""
    ok, state = lifecycle.ready, lifecycle.state
    body = {"status": lifecycle.phase}
    if lifecycle.failure:
        body["error"] = lifecycle.failure
    if ok and state is not None:
        body |= state.views.counts()
    return JSONResponse(body, status_code=200 if ok else 503, headers=None if ok else {"Retry-After": "1"})


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(lifecycle: LifecycleDep) -> Response:
    """Prometheus text format."""
    if lifecycle.state is not None:
        lifecycle.metrics.queued_rows.set(lifecycle.state.batcher.queued_rows())
    return Response(lifecycle.metrics.render(), media_type=lifecycle.metrics.content_type)
