"""Training workers on Ray: ``mpt serve --ray --workers N`` runs N training workers (the loop of
``mpt worker``, :class:`training.worker.Worker`) as a Ray Serve deployment of their own, the
application ``mpt-workers`` beside the server's, on the same cluster and the same store.

Why here: the server package never imports ``training`` (a serving image needs no training code),
so the server's Ray application (:mod:`service.runtime.ray_app`) cannot hold the workers. The CLI imports
both sides, so it composes them: :mod:`service.runtime.ray_main` deploys whatever extra applications its
caller hands it, and ``mpt serve --ray`` hands it this one. The workers are a deployment (not bare
actors) so Ray restarts a dead one, checks their health and stops them gracefully: on shutdown a
replica's running job stops at its next step and goes back to the queue.

A worker reserves ``--worker-cpus`` logical CPUs (0 by default: it trains on one thread at a lower
priority, beside the replicas, see ``mpt worker --help``) and ``--worker-gpus`` GPUs (0: it trains
on the CPU; give it a share, e.g. 0.5 with ``--num-gpus 0.5`` replicas, to train on a GPU it shares
with a replica). In a Serve config: ``serve run mpt_cli.ray_workers:app_builder model=M store=S workers=2``.
"""

from __future__ import annotations

import argparse
import os
import threading
from dataclasses import dataclass, replace
from typing import Any

APP_NAME = "mpt-workers"
FLAGS = {"--workers": "workers", "--worker-cpus": "num_cpus", "--worker-gpus": "num_gpus"}
STOP_S = 60.0  # how long a stopping replica waits for its job's next step
HELP = """training workers (mpt_cli.ray_workers), beside the replicas:
  --workers N         training workers that run the jobs of POST /tasks/NAME/train (MPT_RAY_WORKERS; default 0)
  --worker-cpus X     logical CPUs each reserves (MPT_RAY_WORKER_CPUS; default 0: it runs niced beside the replicas)
  --worker-gpus X     GPUs each reserves (MPT_RAY_WORKER_GPUS; default 0: it trains on the CPU)"""


@dataclass(frozen=True)
class RayWorkers:
    """How many training workers, and what each reserves (``MPT_RAY_WORKERS`` etc. or the flags)."""

    workers: int = 0
    num_cpus: float = 0.0
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.workers < 0 or self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError(f"workers={self.workers}, worker cpus={self.num_cpus}, gpus={self.num_gpus} must be >= 0")

    @classmethod
    def from_env(cls, **overrides: Any) -> RayWorkers:
        values: dict[str, Any] = {}
        for field, kind in (("workers", int), ("num_cpus", float), ("num_gpus", float)):
            env = os.environ.get(f"MPT_RAY_{'WORKERS' if field == 'workers' else 'WORKER_' + field[4:].upper()}")
            value = overrides.get(field, env)
            if value is not None:
                try:
                    values[field] = kind(value)
                except ValueError:
                    raise ValueError(f"{field}={value!r} must be a number") from None
        return cls(**values)


def split_flags(argv: list[str]) -> tuple[RayWorkers, list[str]]:
    """The worker flags of ``mpt serve --ray`` (with ``MPT_RAY_WORKERS``, ``MPT_RAY_WORKER_CPUS``,
    ``MPT_RAY_WORKER_GPUS`` as defaults), and the other arguments for the server."""
    ap = argparse.ArgumentParser(add_help=False)
    for flag, field in FLAGS.items():
        ap.add_argument(flag, dest=field, default=None)
    known, rest = ap.parse_known_args(argv)
    return RayWorkers.from_env(**{k: v for k, v in vars(known).items() if v is not None}), rest


class TrainWorkerReplica:
    """One training worker as a Serve replica: the worker loop runs in a thread from start to shutdown."""

    def __init__(self, model: str, store: str, device: str, threads: int, nice: int):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        if os.getpriority(os.PRIO_PROCESS, 0) < nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        import torch

        from mpt_core.backbone import load_backbone
        from prompts_store import open_store
        from training.config import WorkerConfig
        from training.worker import Worker, default_worker_id

        torch.set_num_threads(threads)
        self.store = open_store(store)
        self.store.list_jobs(limit=1)  # a store without jobs fails the replica here, with the reason
        cfg = WorkerConfig(worker_id=f"ray-{default_worker_id()}", threads=threads, nice=nice)
        # float32 like `mpt worker` and `mpt train adapt` (auto would be bf16 on a GPU): a job run here
        # gives the numbers the CLI gives for the same data and seed
        self.worker = Worker(load_backbone(model, device, "float32"), self.store, cfg)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="mpt-train-worker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as e:  # reported by check_health: Ray replaces the replica
            self.failure = e

    def check_health(self) -> None:
        if not self.thread.is_alive() and not self.worker.stop.is_set():
            raise RuntimeError(f"the training worker stopped: {self.failure!r}")

    def __del__(self) -> None:
        """Ray Serve calls this on shutdown: the running job goes back to the queue at its next step."""
        self.worker.stop.set()
        self.thread.join(timeout=STOP_S)
        self.store.close()


def worker_app(settings, workers: RayWorkers):
    """The bound workers application for the server ``settings`` (its model, store and device), each
    worker with ``mpt worker``'s defaults (one torch thread, a lower CPU priority)."""
    from ray import serve

    from training.config import WorkerConfig

    threads, nice = WorkerConfig().threads, WorkerConfig().nice
    store = settings.store
    device = "cpu" if workers.num_gpus == 0 else settings.device
    deployment = serve.deployment(
        TrainWorkerReplica,
        name="mpt-worker",
        num_replicas=workers.workers,
        ray_actor_options={
            "num_cpus": workers.num_cpus,
            "num_gpus": workers.num_gpus,
            "runtime_env": {"env_vars": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(threads)}},
        },
        graceful_shutdown_timeout_s=STOP_S,
    )
    return deployment.bind(settings.model, store, device, threads, nice)


def companions(settings, _ray_settings, workers: RayWorkers) -> list[tuple[str, Any]]:
    """What ``service.runtime.ray_main`` deploys beside the server: the workers application, when any."""
    return [(APP_NAME, worker_app(settings, workers))] if workers.workers else []


def app_builder(args: dict[str, Any] | None = None):
    """``serve run mpt_cli.ray_workers:app_builder model=M store=S [workers=N worker_cpus=X worker_gpus=X]``:
    the workers alone (the server's settings name the model, store and device; the rest from MPT_*)."""
    from service.settings import Settings

    args = dict(args or {})
    keys = {"workers": "workers", "worker_cpus": "num_cpus", "worker_gpus": "num_gpus"}
    workers = RayWorkers.from_env(**{field: args.pop(key) for key, field in keys.items() if key in args})
    return worker_app(Settings(**args), replace(workers, workers=max(1, workers.workers)))
