"""Every response names the replica that answered: ``x-mpt-replica: <id>``.

Operators (and tests) behind a load balancer or Ray's proxy see who served a request. The id is
``MPT_REPLICA_ID`` when set (Kubernetes: the pod name; Ray: set per replica by ``ray_app``), else
``<hostname>-<pid>``: unique among the processes of one host, and new after a restart.
"""

from __future__ import annotations

import os
import re
import socket

HEADER = b"x-mpt-replica"
_VALID = re.compile(r"^[A-Za-z0-9._:@#/+-]{1,128}$")  # safe in a header value, no spaces or controls


def replica_id() -> str:
    """This process's replica id (``MPT_REPLICA_ID``, else ``hostname-pid``)."""
    value = os.environ.get("MPT_REPLICA_ID") or f"{socket.gethostname()}-{os.getpid()}"
    if not _VALID.match(value):
        raise ValueError(
            f"MPT_REPLICA_ID={value!r}: use 1-128 characters of letters, digits and . _ : @ # / + - (no spaces)"
        )
    return value


class ReplicaHeaderMiddleware:
    """Pure ASGI: adds ``x-mpt-replica`` to every HTTP response, errors and middleware answers included."""

    def __init__(self, app, replica: str | None = None):
        self.app = app
        self.value = (replica or replica_id()).encode("ascii")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def tagged(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (HEADER, self.value)]
            await send(message)

        await self.app(scope, receive, tagged)
