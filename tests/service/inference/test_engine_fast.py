"""The engine on its fast path (the default) against the same engine on the reference path, through
``Engine.run`` on rows as the batcher hands them over: generation strings identical (fp32), scores
within 1e-4, the same best candidates; mixed tasks, families of two prompt lengths, per-row token
limits, ragged candidates, vanished tasks, a batch of one; eager and bucketed (static-shape) fast
paths; the warm-up and its fallback to the reference path."""

import itertools
import logging

import pytest
import torch

from mpt_core import Family, Task
from prompts_store import NotFound
from service.inference.engine import Engine
from service.inference.rows import Candidates, Row
from service.settings import Settings
from service.table.prompt_table import PromptTable

from ..serving import make_store

INPUTS = [
    "is a dog an animal ?",
    "hot or cold : snow",
    "a much longer input sentence than the others, with a few more words in it",
    "big or small : the ocean",
    "x",
    "review: the old film was great and the music was wonderful",
]
LABELS = ["yes", "no", "maybe so", "a much longer candidate answer"]


@pytest.fixture(scope="module")
def table(backbone, tmp_path_factory):
    """Family 'fam' (l=4, tasks t0..t3) and family 'fam6' (l=6, tasks s0, s1 of ranks 1 and 2)."""
    store = make_store(tmp_path_factory.mktemp("engfast") / "s", backbone.fingerprint, backbone.d_model, tasks=4)
    table = PromptTable(backbone.d_model, backbone.device)
    seq = itertools.count(1)  # every version the table publishes carries a store sequence
    table.put_family(store.get_family("fam"), seq=next(seq))
    for n in store.list_tasks():
        table.put_task(store.get_task(n), seq=next(seq))
    g = torch.Generator().manual_seed(5)
    d = backbone.d_model
    table.put_family(Family("fam6", torch.randn(6, d, generator=g), backbone.fingerprint), seq=next(seq))
    for k in range(2):
        task = Task(f"s{k}", "fam6", 2 * torch.randn(6, k + 1, generator=g), torch.randn(d, k + 1, generator=g))
        table.put_task(task, seq=next(seq))
    return table


@pytest.fixture(scope="module")
def reference(backbone, table):
    eng = Engine(backbone, table, Settings(fast_path=False))
    assert eng.fast is None and eng.path == "reference"
    return eng


@pytest.fixture(scope="module")
def fast(backbone, table):
    eng = Engine(backbone, table, Settings())
    assert eng.fast is not None and not eng.fast.options.static  # cpu default: eager, no buckets
    eng.warm_up()
    assert eng.path == "fast"
    return eng


@pytest.fixture(scope="module")
def bucketed(backbone, table):
    """Static shapes on the CPU: compile on but never reached (min batch above every batch), so every
    warmed-up shape runs through its prepared runner with rows and lengths padded to the bucket. The
    shapes cover most of what ``mixed_rows`` needs (inputs up to 33 tokens, 2x3 and 4x14 candidates)."""
    s = Settings(fast_compile="default", fast_compile_min_batch=4096, fast_length_step=8,
                 fast_warmup_batches=[1, 2, 4, 8], fast_warmup_lengths=[8, 16, 40], fast_warmup_steps=[3, 12],
                 fast_warmup_candidates="2x3,4x14")  # fmt: skip
    eng = Engine(backbone, table, s)
    assert eng.fast.options.static
    eng.warm_up()
    return eng


def mixed_rows(engine: Engine) -> list[Row]:
    ids = engine.tokenize(INPUTS)
    two = Candidates(LABELS[:2], engine.tokenize(LABELS[:2]))
    four = Candidates(LABELS, engine.tokenize(LABELS))
    return [
        Row("t0", ids[0], 5),
        Row("t1", ids[1], candidates=four),
        Row("s0", ids[2], 3),
        Row("t1", ids[3], 12),
        Row("s1", ids[4], candidates=two),
        Row("t2", ids[5], 1),
        Row("s1", ids[0], 7),
        Row("t3", ids[2], candidates=two),
    ]


def assert_same_answers(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert (a.error is None) == (b.error is None) and type(a.error) is type(b.error)
        assert a.output == b.output  # generated strings identical; best candidate the same
        if b.scores is None:
            assert a.scores is None
        else:
            assert a.scores == pytest.approx(b.scores, abs=1e-4)


@pytest.mark.parametrize("which", ["fast", "bucketed"])
def test_mixed_batch_equals_the_reference_path(request, reference, which):
    engine = request.getfixturevalue(which)
    rows = mixed_rows(engine)
    ours, theirs = engine.run(rows), reference.run(rows)
    assert_same_answers(ours, theirs)
    assert all(r.error is None for r in ours) and any(r.output for r in ours)
    assert len(ours[1].scores) == 4 and ours[1].output == LABELS[max(range(4), key=ours[1].scores.__getitem__)]


@pytest.mark.parametrize("which", ["fast", "bucketed"])
def test_each_row_keeps_its_own_token_limit(request, reference, which):
    engine = request.getfixturevalue(which)
    ids = engine.tokenize([INPUTS[2]])[0]
    rows = [Row("t0", ids, n) for n in (1, 2, 4, 12)]
    ours = engine.run(rows)
    assert_same_answers(ours, reference.run(rows))
    # greedy is row-wise: a shorter limit gives a prefix of the longer output
    tokens = [engine.tokenize([r.output])[0][:-1] for r in ours]
    assert all(tokens[k + 1][: len(tokens[k])] == tokens[k] for k in range(3))
    assert [r.output for r in ours] == [engine.run([row])[0].output for row in rows]


@pytest.mark.parametrize("which", ["fast", "bucketed"])
def test_rows_of_a_vanished_task_fail_alone(request, reference, which):
    engine = request.getfixturevalue(which)
    rows = mixed_rows(engine)
    rows[2] = Row("ghost", rows[2].input_ids, 3)
    rows[4] = Row("gone", rows[4].input_ids, candidates=rows[4].candidates)
    ours = engine.run(rows)
    assert isinstance(ours[2].error, NotFound) and isinstance(ours[4].error, NotFound)
    assert_same_answers(ours, reference.run(rows))


@pytest.mark.parametrize("which", ["fast", "bucketed"])
def test_a_batch_of_one(request, reference, which):
    engine = request.getfixturevalue(which)
    for row in mixed_rows(engine)[:5]:
        assert_same_answers(engine.run([row]), reference.run([row]))


def test_bucketed_engine_prepared_every_resident_prompt_length(bucketed):
    report = bucketed.warm_up_report
    assert report["verify"]["ok"] and report["prompt_lengths"] == [4, 6] and report["path"] == "fast"
    keys = {p["key"] for p in report["prepared"]["prepared"]}
    fast = bucketed.fast
    for l in (4, 6):  # encoder, generation and scoring shapes per batch bucket, for each prompt length
        assert {str(("encoder", b, l + n)) for b in (1, 2, 4, 8) for n in (8, 16, 40)} <= keys
        assert str(("step", 8, l + 16, 16, fast.absorbed(16, l + 16))) in keys
        assert str(("score", 2, 4, 14, l + 40, fast.absorbed(1 + 4 * 13, l + 40))) in keys
    assert not report["prepared"]["failed"] and not any(p["compiled"] for p in report["prepared"]["prepared"])


def test_the_engine_names_the_batch_sizes_it_pads_to_for_the_batcher(reference, fast, bucketed):
    assert reference.batch_sizes() is None and fast.batch_sizes() is None  # batches run at their own size
    assert bucketed.batch_sizes() == (1, 2, 4, 8)  # the warmed-up batch buckets


def test_bucketed_engine_serves_through_its_prepared_runners(bucketed, reference, monkeypatch):
    hits, get = [], bucketed.fast.prepared.get

    def counting(key):
        runner = get(key)
        if runner is not None:
            hits.append(key[0])
        return runner

    monkeypatch.setattr(bucketed.fast.prepared, "get", counting)
    rows = mixed_rows(bucketed)
    assert_same_answers(bucketed.run(rows), reference.run(rows))
    assert {"encoder", "step", "score"} <= set(hits)


def test_warm_up_falls_back_to_the_reference_path_and_serves(backbone, table, reference, caplog):
    engine = Engine(backbone, table, Settings())
    engine.fast.w.logit_scale = None  # as if a transformers release changed how T5 scales its logits
    rows = mixed_rows(engine)
    before = engine.run(rows)[1].scores  # really broken: unscaled logits score differently
    assert before != pytest.approx(reference.run(rows)[1].scores, abs=1e-4)
    with caplog.at_level(logging.ERROR, logger="mpt.fast"):
        assert engine.warm_up() >= 0
    assert "disagrees with the reference path" in caplog.text
    assert engine.path == "reference-fallback" and not engine.warm_up_report["verify"]["ok"]
    assert_same_answers(engine.run(rows), reference.run(rows))


def test_warm_up_with_no_family_resident(backbone):
    engine = Engine(backbone, PromptTable(backbone.d_model, backbone.device), Settings())
    assert engine.warm_up() >= 0
    assert engine.warm_up_report["prompt_lengths"] == [] and engine.path == "fast"


def test_reference_engine_warms_up(reference):
    assert reference.warm_up() >= 0 and reference.warm_up_report["path"] == "reference"


def test_detokenize_gives_the_hf_tokenizers_strings(fast):
    g = torch.Generator().manual_seed(0)
    vocab = len(fast.tokenizer)
    seqs = [torch.randint(0, vocab, (n,), generator=g).tolist() for n in (0, 1, 3, 9, 17)]
    assert fast.detokenize(seqs) == [fast.tokenizer.decode(s, skip_special_tokens=True).strip() for s in seqs]


def test_pad_builds_host_tensors_once(fast):
    ids, mask = fast._pad([[5, 6, 1], [7, 1], [1]])
    assert ids.device.type == "cpu" and mask.device.type == "cpu"
    assert ids.tolist() == [[5, 6, 1], [7, 1, 0], [1, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 1, 0], [1, 0, 0]]
