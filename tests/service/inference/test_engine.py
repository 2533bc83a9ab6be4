"""The inference engine on its own: tokenisation, mixed generate/score batches, final answers,
vanished tasks. The engine reads a prompt table it is given; these tests fill one directly."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from mpt_core.backbone import load_backbone
from mpt_core.prompted import encode, greedy_decode, score_candidates
from prompts_store import NotFound, open_store
from service.inference.engine import Engine
from service.inference.rows import Candidates, Row
from service.table.prompt_table import PromptTable

DEMO = Path(__file__).resolve().parents[3] / "demo"


@pytest.fixture(scope="module")
def engine(backbone):
    """The tiny T5 (random weights: fine for tokenizing, it generates only special tokens)."""
    return Engine(backbone, PromptTable(backbone.d_model, backbone.device))


@pytest.fixture(scope="module")
def demo():
    """The committed demo bundle (a pretrained lab T5 and trained tasks, so outputs are real text),
    its store opened read-only, and an engine over every one of its tasks."""
    backbone = load_backbone(str(DEMO / "backbone"), device="cpu")
    store = open_store(str(DEMO / "store"), create=False)
    table = PromptTable(backbone.d_model, backbone.device)
    for seq, name in enumerate(store.list_families(), 1):
        table.put_family(store.get_family(name), seq=seq)
    for seq, name in enumerate(store.list_tasks(), 1000):
        table.put_task(store.get_task(name), seq=seq)
    return Engine(backbone, table), store, backbone, json.loads((DEMO / "tasks.json").read_text())


def reference(store, backbone, task: str, ids: list[int], max_new_tokens: int = 0, candidates=None):
    """One row on the reference path, alone and unpadded, from the store's factors: the prompt
    ``P* ∘ (u vᵀ)``, then :mod:`mpt_core.prompted` (the Hugging Face forward). The output
    text when generating; the candidates' log-likelihoods when scoring."""
    t = store.get_task(task)
    prompt = (store.get_family(t.family).shared * (t.u @ t.v.T))[None]  # (1, l, d)
    model = backbone.model
    hidden, mask = encode(model, prompt, torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))
    if candidates is None:
        tokens = greedy_decode(model, hidden, mask, max_new_tokens)[0].tolist()
        return backbone.tokenizer.decode(tokens, skip_special_tokens=True).strip()
    width = max(len(c) for c in candidates.ids)
    cand = torch.tensor([c + [model.config.pad_token_id] * (width - len(c)) for c in candidates.ids])
    cmask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in candidates.ids])
    return score_candidates(model, hidden, mask, torch.zeros(len(cand), dtype=torch.long), cand, cmask).tolist()


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


def test_a_mixed_batch_answers_as_each_row_alone_on_the_reference_path(demo):
    engine, store, backbone, recorded = demo
    bigger, review = recorded["bigger"]["examples"], recorded["review"]["examples"]
    ids = engine.tokenize([bigger[0]["input"], bigger[2]["input"], review[0]["input"], review[2]["input"]])
    labels = Candidates(["good", "bad"], engine.tokenize(["good", "bad"]))
    rows = [
        Row("bigger", ids[0], 12),
        Row("review", ids[2], candidates=labels),
        Row("bigger", ids[1], 3),
        Row("review", ids[3], 12),  # the same task generating beside a row of it scoring
        Row("is_bigger", ids[0], 5),
    ]
    together = engine.run(rows)
    assert engine.path == "fast" and all(r.error is None for r in together)
    for got, row in zip(together, rows):
        if row.candidates is None:
            assert got.output == reference(store, backbone, row.task, row.input_ids, row.max_new_tokens)
            assert got.scores is None
        else:
            expected = reference(store, backbone, row.task, row.input_ids, candidates=row.candidates)
            assert got.scores == pytest.approx(expected, abs=1e-4)
            assert got.output == labels.texts[max(range(2), key=expected.__getitem__)]  # the best, chosen here
    # and what the bundle's build recorded for these inputs (greedy, 12 new tokens)
    assert [together[0].output, together[3].output] == [bigger[0]["predicted"], review[2]["predicted"]]
    assert together[1].output == review[0]["predicted"]
    # a row's greedy output depends on its own max_new_tokens only
    assert engine.run([Row("bigger", ids[1], 12)])[0].output == bigger[2]["predicted"]


def test_rows_of_a_vanished_task_fail_alone(demo):
    engine, store, backbone, recorded = demo
    example = recorded["bigger"]["examples"][0]
    ids = engine.tokenize([example["input"]])[0]
    results = engine.run([Row("bigger", ids, 12), Row("ghost", ids, 12)])
    assert results[0].error is None and results[0].output == example["predicted"]
    assert results[0].output == reference(store, backbone, "bigger", ids, 12)
    assert isinstance(results[1].error, NotFound) and "'ghost'" in str(results[1].error)
    assert results[1].output is None and results[1].scores is None


def test_warm_up_checks_the_fast_path_against_the_reference_path(demo):
    engine, store, _, _ = demo
    took = engine.warm_up()
    report = engine.warm_up_report
    assert took > 0 and report["seconds"] == round(took, 2)
    lengths = sorted({store.get_family(f).length for f in store.list_families()})
    assert report["path"] == engine.path == "fast" and report["prompt_lengths"] == lengths
    verify = report["verify"]
    assert verify["ok"] and verify["greedy_identical"]  # fp32 on the CPU: the same ids, rounding only
    assert verify["hidden_max_err"] <= 1e-3 and verify["score_max_err"] <= 1e-2
    assert engine.device == torch.device("cpu") and engine.dtype == torch.float32
