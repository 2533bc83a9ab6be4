"""The FastAPI application: one frozen T5 serving every task of the store."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from ..runtime.lifecycle import Lifecycle
from ..settings import Settings, get_settings
from .errors import install_error_handlers
from .middleware import BodyLimitMiddleware, InFlight, InFlightMiddleware, MetricsMiddleware
from .openapi import install_openapi
from .predict_asgi import PredictEndpoint
from .replica import ReplicaHeaderMiddleware, replica_id
from .routes import families, jobs, ops, predict, tasks

log = logging.getLogger("mpt.service")

DESCRIPTION = """
One frozen T5 serves every task in the prompt store. Each request's prompt is built on the fly
as `P* ∘ (u vᵀ)` and requests of different tasks share a forward pass, so a task costs only
its `l + d` factor values. Errors are `{"error": {"code", "message"}}`.
"""

DOCS_ASSETS = "/docs-assets"  # Swagger UI and ReDoc, served from the fastapi-offline package: /docs works offline


def warn_if_exposed(settings: Settings) -> None:
    if settings.admin_token is None and not settings.is_loopback():
        log.warning(
            "\n%s\n!! binding %s without MPT_ADMIN_TOKEN: ANYONE who can reach this port can upload,\n"
            "!! replace and delete tasks and families. Set MPT_ADMIN_TOKEN.\n%s",
            "!" * 78,
            settings.host,
            "!" * 78,
        )


class ServiceApp(FastAPI):
    """The FastAPI app, with ``POST /predict`` (the hot path) answered by :class:`PredictEndpoint`
    before FastAPI's machinery; every other request, and the OpenAPI document, is FastAPI's."""

    predict: PredictEndpoint | None = None

    async def __call__(self, scope, receive, send) -> None:
        if (
            self.predict is not None
            and scope["type"] == "http"
            and scope["path"] == "/predict"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            return await self.predict(scope, receive, send)
        return await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    lifecycle = Lifecycle(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        warn_if_exposed(settings)
        await lifecycle.start()
        yield
        await lifecycle.stop()

    app = FastAPIOffline(
        title="mpt-serve",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},  # Swagger UI would otherwise ask validator.swagger.io
    )
    app.__class__ = ServiceApp  # FastAPIOffline builds a plain FastAPI; ServiceApp only adds the dispatch above
    app.state.service = lifecycle  # what deps.py hands the routes
    install_error_handlers(app)
    for router in (predict.router, tasks.router, jobs.router, families.router, ops.router):
        app.include_router(router)
    install_openapi(app, admin_token_set=settings.admin_token is not None)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=lifecycle.metrics)
    app.state.in_flight = InFlight()  # what the drain waits for (service.__main__)
    app.add_middleware(
        InFlightMiddleware, in_flight=app.state.in_flight, draining=lambda: lifecycle.phase == "draining"
    )
    app.state.replica = replica = replica_id()  # the HTTP protocol's own errors name it too (service.__main__)
    app.add_middleware(ReplicaHeaderMiddleware, replica=replica)  # outermost: every response names its replica
    app.predict = PredictEndpoint(lifecycle, app.state.in_flight, replica.encode("ascii"), settings.max_body_bytes)
    return app
