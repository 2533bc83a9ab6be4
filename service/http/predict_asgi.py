"""``POST /predict`` as a plain ASGI endpoint: the hot path of the server, without FastAPI's and
Starlette's per-request machinery (nine middleware layers, routing, dependency solving, request and
response objects: ~60% of the event loop's time per request at high concurrency).

It answers exactly as the FastAPI route of ``routes/predict.py`` would (the same checks in the same
order, the same JSON and error bodies, status codes and headers; ``tests/service/http/test_predict_asgi.py``
compares the two on every case), and does what the middleware does for every request:

    body limit        413 by Content-Length before reading, or while reading (chunked)
    readiness         503 + Retry-After while starting or draining (the route's dependency)
    query             ``task``, the last one given; 422 without it
    body              415 / 422 / 413 (``predict_body``), then the request path
    response          200 JSON, or the error in the one shape; ``x-mpt-replica``; ``connection:
                      close`` while draining; counted in flight (unless it came while draining);
                      latency and status in the metrics

The route stays: it documents the operation (OpenAPI) and answers where this endpoint does not
apply (``ServiceApp`` sends it only ``POST /predict`` without a root path).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qsl

from ..runtime.lifecycle import Lifecycle
from .errors import ApiError, describe_validation_errors, error_body, error_of
from .middleware import BodyTooLarge, InFlight
from .predict_body import check_media_type, parse_predict_body
from .replica import HEADER as REPLICA_HEADER

JSON = (b"content-type", b"application/json")
CLOSE = (b"connection", b"close")
TASK_MISSING = describe_validation_errors([{"loc": ("query", "task"), "msg": "Field required", "type": "missing"}])


class ClientGone(Exception):
    """The client disconnected before its body was read: nothing to answer."""


def query_task(query_string: bytes) -> str:
    """The ``task`` query parameter as FastAPI reads it (the last one given); 422 without one."""
    if (
        query_string.startswith(b"task=")
        and b"&" not in query_string
        and b"%" not in query_string
        and b"+" not in query_string
    ):
        return query_string[5:].decode("latin-1")  # the usual ?task=NAME, nothing to unquote
    task = None
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key == "task":
            task = value
    if task is None:
        raise ApiError(422, "invalid_request", TASK_MISSING)
    return task


class PredictEndpoint:
    def __init__(self, lifecycle: Lifecycle, in_flight: InFlight, replica: bytes, max_body_bytes: int):
        self.lifecycle, self.in_flight, self.max_body_bytes = lifecycle, in_flight, max_body_bytes
        self.replica = (REPLICA_HEADER, replica)
        metrics = lifecycle.metrics
        self._seconds = metrics.request_seconds.labels("/predict", "POST")  # label lookups once, not per request
        self._ok = metrics.responses.labels("200")
        self._observe: Callable[[str, str, int, float], None] = metrics.observe_response

    async def __call__(self, scope, receive, send) -> None:
        start, status = time.perf_counter(), 500
        counted = self.lifecycle.phase != "draining"  # as InFlightMiddleware: not what the drain answers
        self.in_flight.count += counted
        try:
            status, headers, body = await self.answer(scope, receive)
            headers.append(self.replica)
            if self.lifecycle.phase == "draining":
                headers.append(CLOSE)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        except ClientGone:
            pass
        finally:
            self.in_flight.count -= counted
            if status == 200:
                self._seconds.observe(time.perf_counter() - start)
                self._ok.inc()
            else:
                self._observe("/predict", "POST", status, time.perf_counter() - start)

    async def answer(self, scope, receive) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        try:
            content_type = b""
            for key, value in scope["headers"]:
                if key == b"content-length":
                    self.check_length(value)
                elif key == b"content-type" and not content_type:
                    content_type = value
            requests = self.lifecycle.require_ready().requests
            task = query_task(scope["query_string"])
            check_media_type(content_type.decode("latin-1"))
            request = parse_predict_body(await self.read_body(receive), requests.settings)
            response = await requests.predict(task, request.input_list(), request.max_new_tokens, request.candidates)
            body = response.__pydantic_serializer__.to_json(response, exclude_none=True, by_alias=True)
            return 200, [(b"content-length", b"%d" % len(body)), JSON], body
        except ClientGone:
            raise
        except Exception as e:
            status, code, message, extra = error_of(e)
            body = error_body(code, message)
            headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
            return status, [*headers, (b"content-length", b"%d" % len(body)), JSON], body

    def check_length(self, value: bytes) -> None:
        """413 by the Content-Length alone, before a byte of the body is read."""
        try:
            too_big = int(value) > self.max_body_bytes
        except ValueError:
            too_big = False
        if too_big:
            raise BodyTooLarge(self.max_body_bytes)

    async def read_body(self, receive) -> bytes:
        """The whole body; 413 once it passes the limit (chunked, or a lying Content-Length)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
