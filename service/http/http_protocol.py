"""The HTTP/1.1 protocol uvicorn runs: uvicorn's own (httptools when installed, else h11) with the
API's error shape for the requests it refuses before the app sees them, and a limit on the size of
a request head, which httptools does not have (a client could otherwise send headers until memory
runs out).

    malformed request line or headers      400 {"error": {"code": "bad_request", ...}}
    request line (URL) over the limit      414 {"error": {"code": "uri_too_long", ...}}
    headers over the limit                 431 {"error": {"code": "headers_too_large", ...}}

Each closes the connection, as uvicorn's plain-text 400 does, with the app's one error body
(``errors.error_body``) and, as every response of the app, ``x-mpt-replica``.
"""

from __future__ import annotations

from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import error_body
from .replica import HEADER as REPLICA_HEADER

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # uvicorn without httptools: h11, which bounds a request head itself (400)
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

REASONS = {400: b"Bad Request", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


def error_bytes(status: int, code: str, message: str, default_headers, replica: bytes | None = None) -> bytes:
    """A whole HTTP/1.1 error response, written before (or instead of) the app."""
    body = error_body(code, message)
    head = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status])]
    head += [name + b": " + value + b"\r\n" for name, value in default_headers]
    head += [
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        *([REPLICA_HEADER + b": " + replica + b"\r\n"] if replica else []),
        b"connection: close\r\n\r\n",
    ]
    return b"".join(head) + body


class HeadTooLarge(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def protocol_class(max_head_bytes: int, replica: bytes | None = None) -> type:
    """The protocol class to give ``uvicorn.Config(http=...)``; ``replica``: the x-mpt-replica value."""
    if HttpToolsProtocol is None:

        class JsonErrorsH11Protocol(H11Protocol):
            def send_400_response(self, msg: str) -> None:
                self.transport.write(
                    error_bytes(
                        400, "bad_request", f"{msg} (malformed or over-long request line or headers)", [], replica
                    )
                )
                self.transport.close()

        return JsonErrorsH11Protocol

    class JsonErrorsHttpToolsProtocol(HttpToolsProtocol):
        _refused: HeadTooLarge | None = None
        _head_bytes = 0

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_bytes, self._refused = 0, None

        def on_url(self, url: bytes) -> None:
            self._head_bytes += len(url)
            if self._head_bytes > max_head_bytes:  # raising here makes httptools stop: send_400_response follows
                self._refused = HeadTooLarge(414, "uri_too_long", f"the request line is over {max_head_bytes} bytes")
                raise self._refused
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._head_bytes += len(name) + len(value) + 4
            if self._head_bytes > max_head_bytes:
                self._refused = HeadTooLarge(
                    431, "headers_too_large", f"the request line and headers are over {max_head_bytes} bytes"
                )
                raise self._refused
            super().on_header(name, value)

        def send_400_response(self, msg: str) -> None:
            refused = self._refused or HeadTooLarge(400, "bad_request", f"{msg} (malformed request line or headers)")
            self.transport.write(
                error_bytes(refused.status, refused.code, refused.message, self.server_state.default_headers, replica)
            )
            self.transport.close()

    return JsonErrorsHttpToolsProtocol
