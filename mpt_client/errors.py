"""The one exception type of the client: the server's answer (status, code, message, Retry-After),
or a transport failure (status None)."""

from __future__ import annotations

import httpx


class MptError(Exception):
    """An error answer of the server (``status`` >= 400), or no answer at all (``status`` None,
    ``code`` "unreachable": connection refused, timeout, ...)."""

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        retry_after: float | None = None,
        replica: str | None = None,
    ):
        super().__init__(f"{status or 'no answer'} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after  # seconds, when the server said when to come back (503, 429)
        self.replica = replica  # the x-mpt-replica that answered, when one did

    @classmethod
    def from_response(cls, response: httpx.Response) -> MptError:
        """The server's ``{"error": {"code", "message"}}``; anything else (a proxy's page) is summarised."""
        code, message = f"http_{response.status_code}", response.text.strip()[:300] or response.reason_phrase
        try:
            body = response.json()
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict):
                code, message = str(err.get("code", code)), str(err.get("message", message))
        except ValueError:
            pass
        return cls(
            response.status_code,
            code,
            message,
            retry_after=_seconds(response.headers.get("retry-after")),
            replica=response.headers.get("x-mpt-replica"),
        )

    @classmethod
    def from_transport(cls, e: httpx.TransportError, url: str) -> MptError:
        return cls(None, "unreachable", f"{url}: {type(e).__name__}: {e}")


def _seconds(value: str | None) -> float | None:
    """Retry-After as seconds (the delay form; an HTTP date is left as None)."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
