"""The tokenize stage on its own: requests queued while the thread is busy are tokenized together,
in order, each getting its own ids; a call never takes more than ``max_chars`` (but always one
request); a failing call fails its requests only; stopping answers what is still queued."""

import asyncio
import threading

import pytest

from service.inference.tokenize_stage import Stopped, TokenizeStage

TIMEOUT = 5.0


class Encode:
    """Token ids = the characters' code points; records each call; ``gate`` holds a call."""

    def __init__(self, gate: threading.Event | None = None):
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.gate = gate

    def __call__(self, texts: list[str]) -> list[list[int]]:
        self.calls.append(list(texts))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(TIMEOUT)
        if "boom" in texts:
            raise ValueError("boom")
        return [[ord(c) for c in t] for t in texts]


@pytest.fixture
def stages():
    made: list[TokenizeStage] = []

    def make(encode, **kw) -> TokenizeStage:
        made.append(TokenizeStage(encode, **kw))
        return made[-1]

    yield make
    for s in made:
        s.stop()


def test_requests_queued_meanwhile_share_one_call_and_get_their_own_ids(stages):
    gate = threading.Event()
    encode = Encode(gate)
    stage = stages(encode)

    async def go():
        first = stage.tokenize(["ab"])
        assert await asyncio.to_thread(encode.entered.wait, TIMEOUT)  # the thread is inside the first call
        later = [stage.tokenize(["c", "de"]), stage.tokenize([]), stage.tokenize(["f"])]
        gate.set()
        return await asyncio.wait_for(asyncio.gather(first, *later), TIMEOUT)

    assert asyncio.run(go()) == [[[97, 98]], [[99], [100, 101]], [], [[102]]]
    assert encode.calls == [["ab"], ["c", "de", "f"]]


def test_a_call_takes_at_most_max_chars_but_always_one_request(stages):
    gate = threading.Event()
    encode = Encode(gate)
    stage = stages(encode, max_chars=4)

    async def go():
        first = stage.tokenize(["x"])
        assert await asyncio.to_thread(encode.entered.wait, TIMEOUT)
        later = [stage.tokenize(["aa"]), stage.tokenize(["bb"]), stage.tokenize(["c"]), stage.tokenize(["dddddd"])]
        gate.set()
        return await asyncio.wait_for(asyncio.gather(first, *later), TIMEOUT)

    asyncio.run(go())
    assert encode.calls == [["x"], ["aa", "bb"], ["c"], ["dddddd"]]


def test_a_failing_call_fails_its_requests_and_the_stage_goes_on(stages):
    gate = threading.Event()
    encode = Encode(gate)
    stage = stages(encode)

    async def go():
        first = stage.tokenize(["ok"])
        assert await asyncio.to_thread(encode.entered.wait, TIMEOUT)
        bad, also = stage.tokenize(["boom"]), stage.tokenize(["same call"])
        gate.set()
        assert await asyncio.wait_for(first, TIMEOUT) == [[111, 107]]
        for f in (bad, also):
            with pytest.raises(ValueError, match="boom"):
                await asyncio.wait_for(f, TIMEOUT)
        return await asyncio.wait_for(stage.tokenize(["z"]), TIMEOUT)

    assert asyncio.run(go()) == [[122]]


def test_stop_answers_what_is_queued_and_refuses_new_work(stages):
    gate = threading.Event()
    encode = Encode(gate)
    stage = stages(encode)

    async def go():
        first = stage.tokenize(["a"])
        assert await asyncio.to_thread(encode.entered.wait, TIMEOUT)
        queued = stage.tokenize(["b"])
        stopping = asyncio.create_task(asyncio.to_thread(stage.stop))
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.wait_for(stopping, TIMEOUT)
        assert await asyncio.wait_for(first, TIMEOUT) == [[97]]
        with pytest.raises(Stopped):
            await asyncio.wait_for(queued, TIMEOUT)
        with pytest.raises(Stopped):
            stage.tokenize(["c"])

    asyncio.run(go())


def test_the_stage_gives_the_engines_ids(backbone):
    from service.inference.engine import Engine
    from service.table.prompt_table import PromptTable

    engine = Engine(backbone, PromptTable(backbone.d_model, backbone.device))
    stage = TokenizeStage(engine.tokenize)
    texts = ["is a dog an animal ?", "", "caf\u00e9 \u2603 words"]

    async def go():
        return await asyncio.wait_for(stage.tokenize(texts), TIMEOUT)

    try:
        got = asyncio.run(go())
    finally:
        stage.stop()
    assert got == engine.tokenize(texts) == engine.tokenizer(texts).input_ids
