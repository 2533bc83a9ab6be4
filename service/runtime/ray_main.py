"""``mpt serve --ray``: the server as N Ray Serve replicas behind Ray's HTTP proxy on --host:--port.

Starts a local Ray cluster (or joins ``--address`` / ``MPT_RAY_ADDRESS``), deploys the application
of :mod:`service.runtime.ray_app`, and waits. SIGTERM or Ctrl-C: the application is deleted (each replica
drains), then the local cluster this command started is shut down, and the process exits 0.

Server settings are the ``MPT_*`` variables and the flags of ``mpt serve``; Ray settings are the
``MPT_RAY_*`` variables and the flags below. Every replica gets the settings resolved here.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from prompts_store.backends.postgres_store import redact

from ..__main__ import FLAGS as SERVER_FLAGS
from ..http.errors import describe_validation_errors
from ..settings import Settings
from .ray_app import build
from .ray_settings import RaySettings

log = logging.getLogger("mpt.service")

RAY_FLAGS = {
    "--replicas": "replicas",
    "--min-replicas": "min_replicas",
    "--max-replicas": "max_replicas",
    "--target-ongoing-requests": "target_ongoing_requests",
    "--num-cpus": "num_cpus",
    "--num-gpus": "num_gpus",
    "--torch-threads": "torch_threads",
    "--address": "address",
    "--haproxy": "haproxy",
}


class _Stop(Exception):
    """Raised in the main thread by SIGTERM / SIGINT."""


def parse(argv: list[str]) -> tuple[Settings, RaySettings]:
    ap = argparse.ArgumentParser(
        prog="mpt serve --ray", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ray", action="store_true", help="serve on Ray Serve (this command)")
    for flag, field in SERVER_FLAGS.items():
        ap.add_argument(flag, dest=field, default=None, help=f"overrides MPT_{field.upper()}")
    for flag, field in RAY_FLAGS.items():
        if field == "haproxy":
            ap.add_argument(flag, dest="ray_haproxy", action="store_true", default=None, help="sets MPT_RAY_HAPROXY")
        else:
            ap.add_argument(flag, dest=f"ray_{field}", default=None, help=f"overrides MPT_RAY_{field.upper()}")
    args = vars(ap.parse_args(argv))
    server = {k: v for k, v in args.items() if v is not None and k != "ray" and not k.startswith("ray_")}
    ray = {k[4:]: v for k, v in args.items() if v is not None and k.startswith("ray_")}
    return Settings(**server), RaySettings(**ray)


def local_cluster_cpus(rs: RaySettings) -> int:
    """Enough logical CPUs for the most replicas the settings allow (at least this machine's count)."""
    most = rs.max_replicas or rs.replicas
    return rs.cluster_cpus or max(os.cpu_count() or 1, math.ceil(most * rs.num_cpus))


Companions = Callable[[Settings, RaySettings], list[tuple[str, Any]]]


def main(argv: list[str] | None = None, companions: Companions | None = None) -> int:
    """``companions(settings, ray_settings)``: more applications to deploy beside the server's, as
    ``(name, bound application)`` (``mpt serve --ray --workers N`` passes the training workers,
    which this package cannot build: it never imports ``training``)."""
    try:
        settings, rs = parse(sys.argv[1:] if argv is None else argv)
    except ValidationError as e:
        print(
            f"mpt serve --ray: invalid settings: {describe_validation_errors(e.errors(), limit=None)}", file=sys.stderr
        )
        return 2
    if rs.haproxy:  # read by Ray when it loads, here and in the cluster's processes this command starts
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
    try:
        import ray
        from ray import serve
    except ImportError as e:
        print(f"mpt serve --ray: needs the [ray] extra ({e}): pip install 'mpt-serve[ray]'", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    stopping = False

    def on_signal(signum, frame) -> None:
        nonlocal stopping
        if not stopping:  # the first signal stops; more while stopping are ignored
            stopping = True
            raise _Stop(signal.Signals(signum).name)

    if rs.haproxy and settings.is_loopback():
        log.warning("MPT_RAY_HAPROXY: Ray's HAProxy ingress listens on every interface, not only %s", settings.host)
    started_cluster = rs.address is None
    ray.init(
        address=rs.address,
        num_cpus=local_cluster_cpus(rs) if started_cluster else None,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    status = 0
    extra: list[str] = []
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):  # after ray.init, which installs handlers of its own
            signal.signal(sig, on_signal)
        serve.start(http_options={"host": settings.host, "port": settings.port})
        serve.run(build(settings, rs), name=rs.app_name, route_prefix="/")
        for name, app in companions(settings, rs) if companions else ():
            serve.run(app, name=name, route_prefix=None)
            extra.append(name)
        gcs = ray.get_runtime_context().gcs_address
        print(
            f"mpt serve --ray: {rs.scaling()} on http://{settings.host}:{settings.port} "
            f"(store {redact(settings.store)}; ray cluster {gcs}, pid {os.getpid()})",
            flush=True,
        )
        while True:
            time.sleep(3600)
    except _Stop as e:
        log.info("%s: stopping the application (replicas drain), then Ray", e)
    except Exception as e:  # deployment failed: say why, clean up, exit non-zero
        print(f"mpt serve --ray: {type(e).__name__}: {e}", file=sys.stderr)
        status = 1
    finally:
        stopping = True
        try:
            if started_cluster:
                serve.shutdown()  # our own cluster: Serve and all
            else:  # a shared cluster: only our applications
                for name in [*extra, rs.app_name]:
                    serve.delete(name)
        finally:
            if started_cluster:
                ray.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
