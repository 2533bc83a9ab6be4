"""``python -m service`` / ``mpt serve``: run the server with uvicorn.

Settings come from ``MPT_*`` environment variables; these flags override them. SIGTERM (or
Ctrl-C) drains: readiness and new requests answer 503 + Retry-After while in-flight ones finish
(the listener stays open meanwhile), then the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable

# Idle OpenMP threads that busy-wait steal the CPU the event loop needs: on 2 shared cores the
# server answered 2.4x fewer requests with OMP_WAIT_POLICY=ACTIVE than PASSIVE. Read once, when
# torch loads, so it is set before the imports below; an explicit environment value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import uvicorn
from pydantic import ValidationError

from .http.app import create_app
from .http.errors import describe_validation_errors
from .http.http_protocol import protocol_class
from .http.replica import replica_id
from .settings import Settings

log = logging.getLogger("mpt.service")

FLAGS = {  # flag -> settings field
    "--model": "model",
    "--store": "store",
    "--host": "host",
    "--port": "port",
    "--device": "device",
    "--dtype": "dtype",
    "--max-batch": "max_batch",
    "--max-wait-ms": "max_wait_ms",
    "--max-queue": "max_queue",
    "--request-timeout-s": "request_timeout_s",
    "--drain-timeout-s": "drain_timeout_s",
    "--log-level": "log_level",
}


class DrainingServer(uvicorn.Server):
    """Drains as Kubernetes expects. The first SIGTERM (or Ctrl-C) turns the app to draining:
    ``/health/ready`` and new work answer 503 + Retry-After while the listener stays open, so no
    client is refused or reset. Once no request is in flight (or ``drain_timeout_s`` has passed),
    uvicorn's own shutdown closes the listener and the idle connections, and the process exits 0.
    A second signal stops waiting (Ctrl-C twice: at once, as uvicorn does)."""

    def __init__(
        self,
        config: uvicorn.Config,
        begin_drain: Callable[[], None],
        in_flight: Callable[[], int],
        drain_timeout_s: float,
    ):
        super().__init__(config)
        self.begin_drain, self.in_flight, self.drain_timeout_s = begin_drain, in_flight, drain_timeout_s
        self.drain_requested = False
        self.drain_deadline: float | None = None

    def handle_exit(self, sig, frame) -> None:
        if self.drain_requested:  # a second signal: shut down now (uvicorn re-raises it at the end)
            super().handle_exit(sig, frame)
            return
        self.drain_requested = True
        # a signal handler runs between two bytecodes of the event loop's thread, maybe inside the
        # batcher's lock: begin the drain from the loop, at its next turn
        with contextlib.suppress(RuntimeError):  # no loop running yet: the first tick begins it
            asyncio.get_running_loop().call_soon_threadsafe(self._begin_drain)

    def _begin_drain(self) -> None:
        if self.drain_deadline is None:
            self.drain_deadline = time.monotonic() + self.drain_timeout_s
            self.begin_drain()

    async def on_tick(self, counter: int) -> bool:
        if self.drain_requested and not self.should_exit:
            self._begin_drain()
            now = time.monotonic()
            left = self.in_flight()
            if left == 0 or now >= self.drain_deadline:
                if left:
                    log.warning("drain timeout (%gs): closing with %d requests in flight", self.drain_timeout_s, left)
                self.should_exit = True
        return await super().on_tick(counter)


def uvicorn_config(app, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # uvicorn formats each access-log line's fields before its logger drops them: off when they would be dropped
        access_log=settings.log_level in ("debug", "info"),
        http=protocol_class(settings.max_head_bytes, (getattr(app.state, "replica", None) or replica_id()).encode()),
        timeout_graceful_shutdown=2.0,  # what is left once the drain is over: idle connections, closed at once
        lifespan="on",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="mpt serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for flag, field in FLAGS.items():
        ap.add_argument(flag, dest=field, default=None, help=f"overrides MPT_{field.upper()}")
    args = ap.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as e:
        print(f"mpt serve: invalid settings: {describe_validation_errors(e.errors(), limit=None)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    lifecycle = app.state.service
    server = DrainingServer(
        uvicorn_config(app, settings),
        lifecycle.begin_drain,
        lambda: app.state.in_flight.count,
        settings.drain_timeout_s,
    )

    def fatal() -> None:
        server.should_exit = True

    lifecycle.on_fatal = fatal
    server.run()
    return 1 if lifecycle.phase == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
