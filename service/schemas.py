"""Request and response bodies of the HTTP API."""

from __future__ import annotations

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
