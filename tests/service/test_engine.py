"""The inference engine on its own: tokenisation, mixed generate/score batches, final answers,
vanished tasks. The engine reads a prompt table it is given; these tests fill one directly."""

import json
import shutil

import pytest
import torch

from prompts_store import NotFound
from prompts_store.backbone import load_backbone
from service.engine import Engine
from service.prompt_table import PromptTable
from service.rows import Candidates, Row

from .serving import make_store


@pytest.fixture(scope="module")
def engine(tiny_dir, backbone, tmp_path_factory):
    store = make_store(tmp_path_factory.mktemp("eng") / "s", backbone.fingerprint, backbone.d_model, tasks=3)
    table = PromptTable(backbone.d_model, backbone.device)
    table.put_family(store.get_family("fam"), seq=1)
    for n in store.list_tasks():
        table.put_task(store.get_task(n), seq=store.task_info(n).seq)
    return Engine(backbone, table)


def test_tokenize_matches_the_hf_tokenizer(engine):
    texts = ["big or small : the ocean", "  odd   spacing ", "ünïcödé and 123", ""]
    assert engine.tokenize(texts) == engine.tokenizer(texts).input_ids


def test_tokenize_ignores_padding_and_truncation_saved_in_tokenizer_json(tiny_dir, engine, tmp_path):
    # a tokenizer.json may carry batch padding / truncation (the lab's does): batched encoding
    # must still give each text its own unpadded, untruncated ids, as the HF tokenizer does
    shutil.copytree(tiny_dir, tmp_path / "m")
    spec = json.loads((tmp_path / "m" / "tokenizer.json").read_text())
    spec["padding"] = {
        "strategy": "BatchLongest",
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": "<pad>",
    }
    spec["truncation"] = {"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0}
    (tmp_path / "m" / "tokenizer.json").write_text(json.dumps(spec))
    bb = load_backbone(str(tmp_path / "m"), device="cpu")
    eng = Engine(bb, PromptTable(bb.d_model, bb.device))
    texts = ["a", "a much longer input sentence than the others"]
    assert eng.tokenize(texts) == engine.tokenize(texts) == [engine.tokenize([t])[0] for t in texts]
    assert len(eng.tokenize(texts)[1]) > 4


def test_a_mixed_batch_equals_its_rows_run_alone(engine):
    ids = engine.tokenize(
        ["is a dog an animal ?", "hot or cold : snow", "a much longer input sentence than the others"]
    )
    texts = ["yes", "no", "maybe so"]
    cands = Candidates(texts, engine.tokenize(texts))
    rows = [Row("t0", ids[0], 5), Row("t1", ids[1], candidates=cands), Row("t2", ids[2], 3), Row("t1", ids[0], 7)]
    together = engine.run(rows)
    alone = [engine.run([r])[0] for r in rows]
    for a, b in zip(together, alone):
        assert a.error is None and a.output == b.output
        if a.scores is not None:
            assert a.scores == pytest.approx(b.scores, abs=1e-5)
    assert together[1].scores is not None and len(together[1].scores) == 3
    # the engine answers with the best candidate itself
    assert together[1].output == texts[max(range(3), key=together[1].scores.__getitem__)]
    # a row's greedy output is a prefix-consistent function of its own max_new_tokens
    longer = engine.run([Row("t0", ids[0], 12)])[0].output
    assert longer.startswith(together[0].output) or together[0].output == ""


def test_rows_of_a_vanished_task_fail_alone(engine):
    ids = engine.tokenize(["x"])[0]
    results = engine.run([Row("t0", ids, 2), Row("ghost", ids, 2)])
    assert results[0].error is None and isinstance(results[1].error, NotFound)


def test_warm_up_runs(engine):
    assert engine.warm_up() >= 0
    assert engine.device == torch.device("cpu") and engine.dtype == torch.float32
