"""Server settings: ``MPT_*`` environment variables (pydantic-settings), validated once at start.

CLI flags of ``python -m service`` / ``mpt serve`` override the environment.
"""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from prompts_store.jobs import INITS
from prompts_store.names import validate_name
from prompts_store.urls import parse_store_url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MPT_", extra="forbid")

    # what to serve
    model: str = Field("demo/backbone", description="backbone: hub id or local directory")
    store: str = Field(
        "sqlite:///build/demo-store.db",
        description="prompt store URL: sqlite:///PATH (default; `make serve` seeds this one from demo/store), "
        "a directory, or postgresql://...",
    )
    device: str = Field("auto", description="auto (cuda when available), cpu, cuda, cuda:N")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bf16 on cuda, fp32 on cpu"
    )
    attn_implementation: Literal["eager", "sdpa"] = Field("eager", description="T5 attention kernel")

    # network
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    admin_token: SecretStr | None = Field(None, description="Bearer token required for mutations when set")

    # batching and overload
    max_batch: int = Field(32, ge=1, le=4096, description="rows per forward pass")
    max_wait_ms: float = Field(5.0, ge=0, le=10_000, description="how long a batch waits to fill")
    max_queue: int = Field(1024, ge=1, description="rows waiting before 503")
    max_task_queue: int = Field(
        256, ge=1, description="rows one task may have waiting before its requests get 429 (fairness between tenants)"
    )
    max_batch_tokens: int = Field(
        1024, ge=1, description="padded tokens per forward pass; big requests are split to interleave with others"
    )
    request_timeout_s: float = Field(30.0, gt=0, description="deadline of a request (504 after)")
    drain_timeout_s: float = Field(
        30.0, ge=0, description="after SIGTERM, how long in-flight requests may take before the listener closes"
    )

    # request limits
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_head_bytes: int = Field(
        64 * 1024, ge=1024, description="request line + headers; above it 414 / 431 (python -m service)"
    )
    max_inputs: int = Field(64, ge=1, description="inputs per request")
    max_input_tokens: int = Field(512, ge=1, description="tokens per input")
    max_new_tokens: int = Field(64, ge=1, description="cap of max_new_tokens")
    default_new_tokens: int | None = Field(
        None, ge=1, description="when a request gives none (default: min(16, max_new_tokens))"
    )
    max_candidates: int = Field(32, ge=1)
    max_input_chars: int | None = Field(
        None,
        ge=1,
        description="characters per input or candidate, checked before tokenizing "
        "(default: max_input_tokens x the longest vocabulary entry)",
    )
    max_score_tokens: int = Field(
        16384, ge=1, description="work budget of a scoring request: inputs x candidates x longest candidate tokens"
    )
    max_generate_tokens: int = Field(
        2048, ge=1, description="work budget of a generating request: inputs x max_new_tokens"
    )
    tokenizer_threads: int = Field(2, ge=1, le=64, description="threads that tokenize big requests off the event loop")

    # store sync and tenant scale
    store_poll_s: float = Field(1.0, gt=0, description="how often the store is checked for outside changes")
    max_rank: int = Field(8, ge=1, le=4096, description="largest task rank served (uploads above it get 413)")
    max_batch_tasks: int = Field(5000, ge=1, description="tasks per POST /tasks/batch")

    # training jobs (POST /tasks/{name}/train; `mpt worker` runs them; 413 / 429 over these)
    job_steps: int = Field(100, ge=1, description="optimizer steps of a job that names none")
    job_init: str = Field(
        "auto",
        description="factor init of a job that names none: auto, ones, mean, or a task name (auto and mean "
        "read every task of the family: set ones or a source task for families of very many tasks)",
    )
    max_job_steps: int = Field(2000, ge=1, description="optimizer steps a job may ask for (413 above)")
    max_job_examples: int = Field(1000, ge=2, description="examples, and dev examples, per job (413 above)")
    max_job_input_tokens: int = Field(256, ge=1, description="tokens per example input (422 above; training's cut)")
    max_job_target_tokens: int = Field(32, ge=1, description="tokens per example target (422 above; training's cut)")
    max_jobs: int = Field(16, ge=1, description="jobs queued or running in the store at once (429 above)")
    max_family_jobs: int = Field(4, ge=1, description="jobs queued or running per family at once (429 above)")
    job_timeout_s: float = Field(900.0, gt=0, description="a job still running after this long fails")
    job_max_attempts: int = Field(
        3, ge=1, description="claims of a job (a worker lost, a lease run out) before it fails"
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        parse_store_url(value)  # UnsupportedStore (a ValueError) names the bad URL
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_new_tokens is None:
            self.default_new_tokens = min(16, self.max_new_tokens)
        elif self.default_new_tokens > self.max_new_tokens:
            raise ValueError(
                f"default_new_tokens={self.default_new_tokens} exceeds max_new_tokens={self.max_new_tokens}"
            )
        if self.max_inputs > self.max_queue:
            raise ValueError(
                f"max_inputs={self.max_inputs} exceeds max_queue={self.max_queue}: such a request could never be queued"
            )
        if self.job_init not in INITS:
            validate_name(self.job_init, "init task")
        if self.job_steps > self.max_job_steps:
            raise ValueError(f"job_steps={self.job_steps} exceeds max_job_steps={self.max_job_steps}")
        if self.admin_token is not None and not self.admin_token.get_secret_value():
            self.admin_token = None  # MPT_ADMIN_TOKEN="" means no token
        return self

    def is_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")


@functools.lru_cache
def get_settings() -> Settings:
    """The process-wide settings singleton (from the environment)."""
    return Settings()
