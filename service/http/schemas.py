"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"inputs": ["a wonderful film"], "max_new_tokens": 8}]}
    )

    inputs: str | list[str] = Field(description="one input or a list of inputs")
    max_new_tokens: int | None = Field(None, ge=1, description="greedy decoding length (default: the server's)")
    candidates: list[str] | None = Field(None, description="score these answers instead of generating; best one wins")

    def input_list(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else self.inputs


class PredictResponse(BaseModel):
    task: str
    outputs: list[str]
    scores: list[list[float]] | None = Field(None, description="per input, the log-likelihood of each candidate")


class TaskUpload(BaseModel):
    """Factors as JSON: u has l entries, v has d entries (numbers for rank 1, or lists of r numbers)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, description="task name (PUT takes it from the path)")
    family: str
    u: list[float] | list[list[float]]
    v: list[float] | list[list[float]]
    source: str = ""


class FamilyUpload(BaseModel):
    """A shared prompt as JSON: ``shared`` has l rows of d numbers. Without a fingerprint it is
    bound to the server's backbone."""

    model_config = ConfigDict(extra="forbid")
    name: str
    shared: list[list[float]]
    fingerprint: dict | None = None
    source: str = ""


class TaskInfo(BaseModel):
    name: str
    family: str
    rank: int
    l: int
    d: int
    parameters: int
    size_bytes: int
    created_at: str
    source: str


class FamilyInfo(BaseModel):
    name: str
    l: int
    d: int
    tasks: int
    created_at: str
    source: str
    model_id: str | None


class TaskPage(BaseModel):
    tasks: list[TaskInfo] = Field(description="sorted by name")
    next: str | None = Field(description="pass as `after` for the next page; null on the last page")


class FamilyPage(BaseModel):
    families: list[FamilyInfo] = Field(description="sorted by name")
    next: str | None = Field(description="pass as `after` for the next page; null on the last page")


class BatchTask(BaseModel):
    """One task of a batch upload (the same fields as a single JSON upload)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    family: str
    u: list[float] | list[list[float]]
    v: list[float] | list[list[float]]
    source: str = ""


class BatchUpload(BaseModel):
    """Up to ``MAX_BATCH_TASKS`` tasks written in one store transaction: all of them or none."""

    model_config = ConfigDict(extra="forbid")
    tasks: list[BatchTask] = Field(min_length=1)


class BatchResult(BaseModel):
    count: int = Field(description="tasks written (all of the request's)")
    sequence: int = Field(description="the store's change-feed sequence of the last task written")


class TrainExample(BaseModel):
    """One training example: the task's answer ``target`` to ``input``."""

    model_config = ConfigDict(extra="forbid")
    input: str = Field(min_length=1, pattern=r"\S", description="an input text, as /predict will get it")
    target: str = Field(min_length=1, pattern=r"\S", description="the answer to train toward")


class TrainRequest(BaseModel):
    """A training job: adapt the family's prompt to these examples (``mode`` factors: only u, v train,
    a new task of the family; full: P*, u, v, a new family of one named after the task)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "examples": [
                        {"input": "we had a wonderful evening .", "target": "good"},
                        {"input": "the soup was awful .", "target": "bad"},
                    ],
                    "mode": "factors",
                    "steps": 100,
                }
            ]
        },
    )
    examples: list[TrainExample] = Field(min_length=2, description="training examples (at least 2)")
    dev: list[TrainExample] | None = Field(
        None, min_length=1, description="held-out examples: checkpoint selection and the job's dev metrics"
    )
    mode: Literal["factors", "full"] = Field("factors", description="what trains: factors (u, v) or full (P*, u, v)")
    steps: int | None = Field(None, ge=1, description="optimizer steps (default: MPT_JOB_STEPS)")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="the same seed and examples give the same factors")
    overwrite: bool = Field(False, description="replace the task when it exists (otherwise 409)")
    init: str | None = Field(
        None,
        description="factor init, as `mpt train adapt --init`: auto (the mean of the family's tasks when it has "
        "any, else ones), ones (start from P* itself), mean, or the name of a task of the family "
        "(default: MPT_JOB_INIT)",
    )


class JobAccepted(BaseModel):
    job: int = Field(description="the job's id: GET /jobs/{job}")
    status: str = Field(description="queued")


class JobInfo(BaseModel):
    id: int
    task: str
    family: str = Field(description="the family adapted from")
    mode: str
    status: str = Field(description="queued, running, succeeded, failed or cancelled")
    step: int = Field(description="optimizer steps done (the worker writes it about once a second)")
    steps: int
    loss: float | None = Field(description="smoothed training loss at the last progress write")
    dev: dict[str, float] | None = Field(
        description="dev metrics when dev examples were given: during training the checkpoint score; at the end "
        "exact_match, f1 and, for classification, rank_accuracy (the best-scoring label) and the majority baseline"
    )
    examples: int = Field(description="training examples")
    attempts: int = Field(description="workers that have claimed it (a lost worker's job is requeued)")
    max_attempts: int
    worker: str | None = Field(description="the worker running it, or the last one")
    cancel_requested: bool
    created_at: str
    started_at: str | None
    finished_at: str | None
    elapsed_s: float = Field(description="seconds from submission to its end, or until now")
    error: str | None = Field(description="why it failed or was cancelled, or what happened to an earlier attempt")


class JobPage(BaseModel):
    jobs: list[JobInfo] = Field(description="oldest first")
    next: int | None = Field(description="pass as `after` for the next page; null on the last page")
