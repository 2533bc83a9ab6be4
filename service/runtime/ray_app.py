"""The server as a Ray Serve application: N replicas, each one full engine, behind Ray's HTTP proxy.

Each replica builds the ordinary FastAPI app (``create_app``) in its own process and runs its
lifespan (model load, store sync, micro-batcher) before Ray routes to it: the replica's start-up
waits until the server is ready, and fails (Ray retries it) when start-up fails. Replicas share
the store named by ``MPT_STORE`` (PostgreSQL across hosts; SQLite or a directory on one host) and
learn each other's writes from it. Every response names its replica (``x-mpt-replica``).

Use it from ``mpt serve --ray`` (see :mod:`service.runtime.ray_main`), or in a Serve config / ``serve run``:

    serve run service.runtime.ray_app:app_builder model=demo/backbone store=postgresql://... replicas=2

``app_builder(args)`` takes server settings (``model``, ``store``, ...; the ``MPT_*`` fields) and
Ray settings (``replicas``, ``max_replicas``, ``num_gpus``, ...; the ``MPT_RAY_*`` fields) as args,
the environment supplying the rest. Ray is imported only when an application is built.
"""

from __future__ import annotations

import asyncio
import os
import socket
from contextlib import asynccontextmanager
from typing import Any

from ..settings import Settings
from .ray_settings import RaySettings

READY_POLL_S = 0.05


def split_args(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Serve-config ``args`` -> (server settings overrides, Ray settings overrides); unknown keys are refused."""
    server, ray = {}, {}
    for key, value in (args or {}).items():
        k = key.replace("-", "_")
        if k in Settings.model_fields:
            server[k] = value
        elif k in RaySettings.model_fields:
            ray[k] = value
        else:
            raise ValueError(f"unknown argument {key!r}: not a server (MPT_*) nor a Ray (MPT_RAY_*) setting")
    return server, ray


def replica_settings(settings: Settings) -> dict[str, Any]:
    """Every field of the driver's settings, secrets revealed: replicas build exactly these."""
    out = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        out[name] = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    return out


class MptReplica:
    """One replica: the whole server app (the class ``deployment()`` wraps with Ray Serve)."""

    def __init__(self, settings: dict[str, Any], torch_threads: int):
        import torch

        torch.set_num_threads(torch_threads)
        self.settings = Settings(**settings)
        self.lifecycle = None

    def __serve_build_asgi_app__(self):
        """Called by Ray Serve once per replica, after __init__: the app whose lifespan it then runs."""
        from ray import serve

        from ..http.app import create_app

        tag = serve.get_replica_context().replica_id.unique_id
        os.environ["MPT_REPLICA_ID"] = f"ray-{tag}-{socket.gethostname()}-{os.getpid()}"  # one per replica
        app = create_app(self.settings)
        self.lifecycle = lifecycle = app.state.service
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def until_ready(a):
            async with inner(a) as state:  # starts the load in the background, as under uvicorn
                while lifecycle.phase == "starting":  # Ray routes to a replica once this returns
                    await asyncio.sleep(READY_POLL_S)
                if lifecycle.phase == "failed":
                    raise RuntimeError(f"replica start-up failed: {lifecycle.failure}")
                yield state

        app.router.lifespan_context = until_ready
        return app

    def check_health(self) -> None:
        """Ray calls this periodically; raising replaces the replica."""
        if self.lifecycle is not None and self.lifecycle.phase == "failed":
            raise RuntimeError(f"start-up failed: {self.lifecycle.failure}")


def deployment(ray_settings: RaySettings, server: Settings):
    """The Ray Serve deployment of :class:`MptReplica` with the settings' scaling and resources."""
    from ray import serve

    threads = ray_settings.threads()
    grace = ray_settings.graceful_shutdown_timeout_s
    return serve.deployment(
        serve.ingress()(MptReplica),
        name="mpt",
        ray_actor_options={
            "num_cpus": ray_settings.num_cpus,
            "num_gpus": ray_settings.gpus(),
            # read when torch loads in the replica: idle OpenMP threads must not spin on shared cores
            "runtime_env": {
                "env_vars": {
                    "OMP_WAIT_POLICY": "PASSIVE",
                    "OMP_NUM_THREADS": str(threads),
                    "TOKENIZERS_PARALLELISM": "false",
                }
            },
        },
        max_ongoing_requests=ray_settings.max_ongoing_requests,
        health_check_period_s=ray_settings.health_check_period_s,
        graceful_shutdown_timeout_s=server.drain_timeout_s + 5 if grace is None else grace,
        **ray_settings.scaling(),
    )


def build(server: Settings, ray_settings: RaySettings):
    """The bound application: the deployment with the driver's settings as every replica's."""
    return deployment(ray_settings, server).bind(replica_settings(server), ray_settings.threads())


def app_builder(args: dict[str, Any] | None = None):
    """The application for ``serve run service.runtime.ray_app:app_builder key=value ...`` and Serve configs."""
    server, ray = split_args(args or {})
    return build(Settings(**server), RaySettings(**ray))
