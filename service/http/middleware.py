"""Pure ASGI middleware: a request-body size limit (413 before the body is read), per-request
metrics (latency by route, responses by status), and the count of requests in flight that the
drain waits for."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..runtime.metrics import Metrics
from .errors import ApiError, error_response


class BodyTooLarge(ApiError):
    def __init__(self, limit: int):
        super().__init__(413, "body_too_large", f"request body over the limit of {limit} bytes")


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:  # refuse without reading a byte of the body
                    err = BodyTooLarge(self.max_bytes)
                    return await error_response(err.status, err.code, err.message)(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # chunked or lying content-length
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


class MetricsMiddleware:
    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500

        async def capture(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_response(path, scope.get("method", ""), status, time.perf_counter() - start)


class InFlight:
    """The number of HTTP requests being answered that arrived before the drain began; the drain
    waits until it is 0. Requests arriving while draining are not counted: each is answered at once
    (503, or a cheap probe), and a client retrying in a loop would otherwise hold the drain open."""

    def __init__(self) -> None:
        self.count = 0


class InFlightMiddleware:
    """Counts the HTTP requests being answered in ``in_flight`` and, while draining, asks clients to
    close their connections (``Connection: close``): they reconnect and get 503 + Retry-After until
    the listener closes, so no idle keep-alive connection is cut under a request at the end."""

    def __init__(self, app, in_flight: InFlight, draining: Callable[[], bool]):
        self.app, self.in_flight, self.draining = app, in_flight, draining

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_closing(message):
            if message["type"] == "http.response.start" and self.draining():
                message = dict(message, headers=[*message.get("headers", []), (b"connection", b"close")])
            await send(message)

        if self.draining():
            return await self.app(scope, receive, send_closing)
        self.in_flight.count += 1
        try:
            await self.app(scope, receive, send_closing)
        finally:
            self.in_flight.count -= 1
