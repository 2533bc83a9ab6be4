"""POST /predict?task=NAME and GET /predict?task=NAME&input=TEXT."""

from typing import Annotated

from fastapi import APIRouter, Query

from ..deps import RequestPathDep
from ..schemas import PredictRequest, PredictResponse

router = APIRouter(tags=["predict"])
TaskQuery = Annotated[str, Query(description="task name", examples=["sentiment"])]


@router.post("/predict", response_model=PredictResponse, response_model_exclude_none=True)
async def predict(task: TaskQuery, body: PredictRequest, request_path: RequestPathDep) -> PredictResponse:
    return await request_path.predict(task, body.input_list(), body.max_new_tokens, body.candidates)


@router.get("/predict", response_model=PredictResponse, response_model_exclude_none=True)
async def predict_one(
    task: TaskQuery,
    request_path: RequestPathDep,
    input: Annotated[str, Query(description="one input text")],
    max_new_tokens: Annotated[int | None, Query(ge=1)] = None,
    candidate: Annotated[list[str] | None, Query(description="repeat to score candidates")] = None,
) -> PredictResponse:
    return await request_path.predict(task, [input], max_new_tokens, candidate)
