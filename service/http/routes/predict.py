"""POST /predict?task=NAME and GET /predict?task=NAME&input=TEXT."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from mpt_core.names import NAME_PATTERN

from ..deps import RequestPathDep
from ..openapi import errors
from ..predict_body import predict_body_openapi, read_predict_body
from ..schemas import PredictResponse

router = APIRouter(tags=["predict"])
TaskQuery = Annotated[
    str, Query(description="task name", examples=["sentiment"], json_schema_extra={"pattern": NAME_PATTERN})
]
PREDICT_ERRORS = errors(404, 413, 422, 429, 503, 504)


@router.post(
    "/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=errors(404, 413, 415, 422, 429, 503, 504),
    openapi_extra=predict_body_openapi(),
)
async def predict(task: TaskQuery, request: Request, request_path: RequestPathDep) -> PredictResponse:
    """Generate (greedy, up to ``max_new_tokens``) or score ``candidates`` for each input, with the task's prompt."""
    body = await read_predict_body(request, request_path.settings)
    return await request_path.predict(task, body.input_list(), body.max_new_tokens, body.candidates)


@router.get("/predict", response_model=PredictResponse, response_model_exclude_none=True, responses=PREDICT_ERRORS)
async def predict_one(
    task: TaskQuery,
    request_path: RequestPathDep,
    input: Annotated[str, Query(description="one input text")],
    max_new_tokens: Annotated[int | None, Query(ge=1)] = None,
    candidate: Annotated[list[str] | None, Query(description="repeat to score candidates")] = None,
) -> PredictResponse:
    """The same for one input (``&candidate=`` repeated to score candidates)."""
    return await request_path.predict(task, [input], max_new_tokens, candidate)
