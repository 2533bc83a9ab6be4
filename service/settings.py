"""Server settings: ``MPT_*`` environment variables (pydantic-settings), validated once at start.

CLI flags of ``python -m service`` / ``mpt serve`` override the environment.
"""

from __future__ import annotations

import functools
import json
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mpt_core.names import validate_name
from prompts_store.jobs import INITS
from prompts_store.urls import parse_store_url


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{text!r} is not a JSON list") from None


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
    max_batch_tokens: int | None = Field(
        None,
        ge=1,
        description="padded tokens per forward pass; big requests are split to interleave with others "
        "(default: 1024 on a CPU, 65536 on a GPU)",
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

    # ---- engine fast path (service/inference/fast; README "Engine speed"). Lists: JSON or comma-separated ----
    fast_path: bool = Field(True, description="serve through the fast T5 forward; false: the reference HF forward")
    fast_attention: Literal["auto", "eager", "sdpa"] = Field("auto", description="auto: eager (measured fastest)")
    fast_cross: Literal["auto", "cached", "absorbed"] = Field(
        "auto", description="cross-attention with cached K/V or absorbed into the query; auto: fewer flops"
    )
    fast_compile: Literal["auto", "off", "default", "max-autotune-no-cudagraphs", "max-autotune"] = Field(
        "auto", description="torch.compile mode of the encoder; auto: default on cuda, off on cpu"
    )
    fast_compile_min_batch: int = Field(16, ge=1, description="smaller batch buckets are CUDA-graphed, not compiled")
    fast_cuda_graphs: bool = Field(True, description="capture warmed-up shapes into CUDA graphs (cuda only)")
    fast_length_step: int = Field(32, ge=1, description="input lengths pad up to a multiple of this (static shapes)")
    fast_compile_budget_s: float = Field(
        300.0, gt=0, description="warm-up stops compiling after this long (later shapes: CUDA graphs only)"
    )
    fast_warmup_batches: Annotated[list[int], NoDecode] = Field(
        [1, 2, 4, 8, 16, 32], description="batch sizes prepared at warm-up (capped at max_batch)"
    )
    fast_warmup_lengths: Annotated[list[int], NoDecode] = Field(
        [32, 64, 128], description="input token counts prepared at warm-up (capped at max_input_tokens)"
    )
    fast_warmup_steps: Annotated[list[int], NoDecode] = Field(
        [], description="max_new_tokens values prepared at warm-up (default: default_new_tokens)"
    )
    fast_warmup_candidates: Annotated[list[tuple[int, int]], NoDecode] = Field(
        [(2, 2)], description="candidate shapes prepared at warm-up, CxM: C candidates of M tokens (EOS included)"
    )

    @field_validator("fast_warmup_batches", "fast_warmup_lengths", "fast_warmup_steps", mode="before")
    @classmethod
    def _int_list(cls, value):
        """'1,2,4' or '[1, 2, 4]' from the environment; a list as is."""
        if isinstance(value, str):
            text = value.strip()
            return _json(text) if text.startswith("[") else [x for x in text.replace(" ", "").split(",") if x]
        return value

    @field_validator("fast_warmup_candidates", mode="before")
    @classmethod
    def _shape_list(cls, value):
        """'2x2,2x3' or '[[2, 2], [2, 3]]' from the environment; a list as is."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return _json(text)
            return [tuple(x.lower().split("x", 1)) for x in text.replace(" ", "").split(",") if x]
        return value

    @model_validator(mode="after")
    def _check_fast(self) -> Settings:
        for name in ("fast_warmup_batches", "fast_warmup_lengths", "fast_warmup_steps"):
            bad = [v for v in getattr(self, name) if v < 1]
            if bad:
                raise ValueError(f"{name}={getattr(self, name)}: {bad[0]} is not a positive count")
        bad_shapes = [c for c in self.fast_warmup_candidates if min(c) < 1]
        if bad_shapes:
            shapes = self.fast_warmup_candidates
            raise ValueError(f"fast_warmup_candidates={shapes}: {bad_shapes[0]} needs candidates >= 1 and tokens >= 1")
        # shapes the server can never see are not prepared: cap at the request limits, once each
        self.fast_warmup_batches = sorted({min(b, self.max_batch) for b in self.fast_warmup_batches})
        self.fast_warmup_lengths = sorted({min(n, self.max_input_tokens) for n in self.fast_warmup_lengths})
        steps = self.fast_warmup_steps or [self.default_new_tokens or min(16, self.max_new_tokens)]  # _check: later
        self.fast_warmup_steps = sorted({min(n, self.max_new_tokens) for n in steps})
        self.fast_warmup_candidates = sorted({(min(c, self.max_candidates), m) for c, m in self.fast_warmup_candidates})
        return self

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
