"""Settings of the Ray Serve deployment: ``MPT_RAY_*`` environment variables (pydantic-settings),
overridden by ``mpt serve --ray`` flags or by a Serve config's ``args``. Validated once, at the edge.

Fixed size: ``replicas``. Autoscaling: set ``max_replicas`` (above ``min_replicas``); Ray then keeps
about ``target_ongoing_requests`` in flight per replica. Each replica is one full engine (its own
backbone and prompt table) reserving ``num_cpus`` and ``num_gpus`` (default: one GPU each when this
machine has CUDA, else none) and running ``torch_threads`` intra-op threads.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MPT_RAY_", extra="forbid")

    replicas: int = Field(1, ge=1, description="replicas when not autoscaling")
    min_replicas: int | None = Field(None, ge=0, description="autoscaling lower bound (default: replicas)")
    max_replicas: int | None = Field(None, ge=1, description="autoscaling upper bound; set it to autoscale")
    target_ongoing_requests: float = Field(16.0, gt=0, description="requests in flight per replica to aim for")
    max_ongoing_requests: int = Field(256, ge=1, description="requests one replica takes at once (it batches them)")
    num_cpus: float = Field(1.0, ge=0, description="CPUs reserved per replica")
    num_gpus: float | None = Field(None, ge=0, description="GPUs per replica (default: 1 with CUDA, else 0)")
    torch_threads: int | None = Field(None, ge=1, description="torch threads per replica (default: num_cpus, >= 1)")
    address: str | None = Field(None, description="an existing Ray cluster to join (default: start a local one)")
    cluster_cpus: int | None = Field(None, ge=1, description="CPUs of the local cluster (default: enough for all)")
    health_check_period_s: float = Field(5.0, gt=0)
    graceful_shutdown_timeout_s: float | None = Field(
        None, ge=0, description="how long a stopping replica drains (default: MPT_DRAIN_TIMEOUT_S + 5)"
    )
    app_name: str = Field("mpt", min_length=1)
    haproxy: bool = Field(
        False,
        description="serve through Ray's HAProxy ingress instead of its Python proxy (Ray's experimental "
        "RAY_SERVE_ENABLE_HA_PROXY; it binds every interface); set where the cluster starts",
    )

    @model_validator(mode="after")
    def _check(self) -> RaySettings:
        if self.max_replicas is not None:
            low = self.replicas if self.min_replicas is None else self.min_replicas
            if low > self.max_replicas:
                raise ValueError(f"min_replicas={low} exceeds max_replicas={self.max_replicas}")
        elif self.min_replicas is not None:
            raise ValueError(f"min_replicas={self.min_replicas} needs max_replicas (autoscaling bounds come in pairs)")
        return self

    def gpus(self) -> float:
        if self.num_gpus is not None:
            return self.num_gpus
        import torch

        return 1.0 if torch.cuda.is_available() else 0.0

    def threads(self) -> int:
        return self.torch_threads or max(1, int(self.num_cpus))

    def scaling(self) -> dict:
        """The deployment's ``num_replicas`` / ``autoscaling_config`` options."""
        if self.max_replicas is None:
            return {"num_replicas": self.replicas}
        low = self.replicas if self.min_replicas is None else self.min_replicas
        return {
            "autoscaling_config": {
                "min_replicas": low,
                "initial_replicas": max(low, min(self.replicas, self.max_replicas)),
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        }
