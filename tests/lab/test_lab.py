"""The accuracy lab (lab/): generator determinism, held-out separation, span corruption, a
few pretraining steps, and a tiny comparison grid producing well-formed rows and tables."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from lab.world.corpus import span_corrupt
from lab.world.lexicon import check_lexicon
from lab.world.registry import FAMILIES, MIX_WEIGHTS, PRETRAINING, SOURCES, UNSEEN_TARGETS, check_registry
from lab.world.tasks import SplitSizes, samples, task_data
from lab.world.world import World, WorldConfig


def test_lexicon_and_registry_invariants():
    check_lexicon()
    check_registry()
    assert len(SOURCES) == 6 and not set(UNSEEN_TARGETS) & set(PRETRAINING)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_generators_are_deterministic_and_world_seeded(name):
    fam = FAMILIES[name]
    a = samples(fam, World(), "test", 30, seed=0)
    assert a == samples(fam, World(), "test", 30, seed=0)
    assert [s.body for s in a] != [s.body for s in samples(fam, World(WorldConfig(seed=1)), "test", 30, seed=0)]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_dev_and_test_hold_out_words_and_templates(name):
    fam, world = FAMILIES[name], World()
    train = samples(fam, world, "train", 600, seed=0)
    train_words = set().union(*(s.words for s in train))
    train_templates = {s.template for s in train if s.template}
    for split in ("dev", "test"):
        held = samples(fam, world, split, 200, seed=0)
        assert held, f"{name}: empty {split} split"
        leaked = set().union(*(s.words for s in held)) & train_words
        assert not leaked, f"{name}: {split} uses training words {sorted(leaked)[:5]}"
        assert not {s.template for s in held if s.template} & train_templates, (
            f"{name}: {split} reuses a training template"
        )
        for s in held:  # the recorded words really are the input's words, so the check above is not vacuous
            assert s.words <= set(s.body.split()) | {s.target}, (name, s)
    if fam.labels:  # balanced enough that the majority label is not a strong baseline
        test = samples(fam, world, "test", 200, seed=0)
        top = max(sum(s.target == label for s in test) for label in fam.labels)
        assert top / len(test) <= 0.7, f"{name}: majority label is {top}/{len(test)} of the test split"


def test_prefixed_and_bare_task_data():
    fam = FAMILIES["bigger"]
    bare = task_data(fam, World(), SplitSizes(10, 5, 5))
    pref = task_data(fam, World(), SplitSizes(10, 5, 5), prefixed=True)
    assert [f"which is bigger : {e.input}" for e in bare.train] == [e.input for e in pref.train]
    assert [e.target for e in bare.split("test")] == [e.target for e in pref.split("test")]


def test_span_corruption_keeps_every_token_once():
    rng = random.Random(0)
    sentinels = list(range(1000, 1020))
    for n in (2, 3, 10, 41):
        ids = list(range(10, 10 + n))
        inp, tgt = span_corrupt(ids, rng, sentinels)
        assert tgt[-1] in sentinels and inp.count(sentinels[0]) == 1
        rebuilt, spans, cur = [], {}, None
        for t in tgt:
            if t in sentinels:
                cur = t
                spans[cur] = []
            else:
                spans[cur].append(t)
        for t in inp:
            rebuilt += spans[t] if t in sentinels else [t]
        assert rebuilt == ids
        assert 0 < sum(len(v) for v in spans.values()) < n


@pytest.fixture(scope="module")
def micro_backbone(tmp_path_factory):
    from lab.pretrain import PretrainConfig, pretrain

    out = tmp_path_factory.mktemp("lab") / "backbone"
    cfg = PretrainConfig(scale="micro", steps=6, per_family=20, span_rows=40, eval_every=3, eval_examples=2)
    report = pretrain(out, cfg)
    return out, report


def test_pretraining_saves_a_loadable_backbone_and_its_report(micro_backbone):
    from mpt_core.backbone import load_backbone

    out, report = micro_backbone
    assert report["bank"]["mixture_rows"] == sum(round(20 * MIX_WEIGHTS.get(n, 1.0)) for n in PRETRAINING)
    assert report["bank"]["span_rows"] > 0
    assert [h["step"] for h in report["history"]] == [3, 6]
    assert set(report["history"][-1]["heldout_exact_match"]) == set(PRETRAINING)
    assert json.loads((out / "lab_backbone.json").read_text())["config"]["steps"] == 6
    bb = load_backbone(str(out), device="cpu")
    assert bb.d_model == 32 and bb.tokenizer.convert_tokens_to_ids("<extra_id_0>") != bb.tokenizer.unk_token_id
    saved = json.loads((out / "tokenizer.json").read_text())
    assert saved["padding"] is None and saved["truncation"] is None


def test_tiny_grid_rows_tables_and_plot(micro_backbone, tmp_path):
    from lab.grid import GridConfig, run_grid
    from lab.report import markdown

    out, _ = micro_backbone
    cfg = GridConfig(
        backbone=str(out),
        targets=("is_bigger",),
        methods=("pt", "mpt-factors", "spot", "no-distill"),
        shots=(4,),
        seeds=(0,),
        teacher_steps=2,
        source_steps=2,
        target_steps=2,
        eval_every=1,
        train_examples=20,
        dev_examples=4,
        test_examples=8,
        prompt_length=3,
        batch_size=6,
    )
    result = run_grid(cfg, tmp_path / "runs")
    rows = result["rows"]
    keys = {"method", "target", "seen", "shots", "seed", "metric", "value", "trainable_params"}
    assert all(set(r) == keys for r in rows)
    assert all(0.0 <= r["value"] <= 1.0 for r in rows)
    params = {r["method"]: r["trainable_params"] for r in rows}
    assert params == {
        "pt": 3 * 32,
        "spot": 3 * 32,
        "mpt-factors": 3 + 32,
        "no-distill": 3 * 32 + 3 + 32,
        "majority": 0,
    }  # every method at l = 3
    em = [r for r in rows if r["metric"] == "exact_match" and r["method"] != "majority"]
    assert {(r["method"], r["target"], r["shots"], r["seed"], r["seen"]) for r in em} == {
        (m, "is_bigger", "4", 0, False) for m in ("pt", "mpt-factors", "spot", "no-distill")
    }
    assert {r["metric"] for r in rows} == {"exact_match", "f1", "rank_accuracy"}
    md = markdown(result)
    assert "| mpt-factors | 35 |" in md and "| majority | 0 |" in md and "### 4-shot" in md
    again = run_grid(cfg, tmp_path / "runs")  # every cell is cached: same rows, no retraining
    assert again["rows"] == rows
    from lab.report import plot

    plot(result, tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_bundle_builds_a_served_store_and_its_task_card(micro_backbone, tmp_path):
    import shutil

    from lab.bundle import FAMILY, BundleConfig, build_bundle
    from prompts_store import DirectoryStore

    out, _ = micro_backbone
    shutil.copytree(out, tmp_path / "demo" / "backbone")
    cfg = BundleConfig(
        out=str(tmp_path / "demo"),
        tasks=("bigger", "review", "is_bigger"),
        prompt_length=3,
        teacher_steps=2,
        distill_steps=2,
        adapt_steps=2,
        batch_size=6,
        examples_per_task=2,
    )
    report = build_bundle(cfg, tmp_path / "work")
    store = DirectoryStore(tmp_path / "demo" / "store")
    assert FAMILY in store.list_families()
    assert {"bigger", "review", "is_bigger"} | set(SOURCES) <= set(store.list_tasks())
    card = json.loads((tmp_path / "demo" / "tasks.json").read_text())
    assert list(card) == ["bigger", "review", "is_bigger"] and card == report["tasks"]
    for t in card.values():
        assert len(t["examples"]) == 2 and 0 <= t["heldout_exact_match"] <= 1
        assert all(set(e) == {"input", "expected", "predicted"} for e in t["examples"])
    assert card["review"]["majority_baseline"] is not None and report["bytes"] > 0
    with pytest.raises(ValueError, match="at least 3"):
        BundleConfig(tasks=("bigger", "review"))
    with pytest.raises(ValueError, match="target family"):
        BundleConfig(tasks=("bigger", "review", "nli"))


def test_held_out_splits_are_label_balanced_and_keep_the_family_label_set():
    world = World(WorldConfig(seed=0))
    for name in ("same_kind", "review", "nli"):
        task = task_data(FAMILIES[name], world, SplitSizes())
        counts = Counter(e.target for e in task.split("test"))
        assert set(counts) == set(FAMILIES[name].labels) and len(set(counts.values())) == 1, (name, counts)
    bigger = task_data(FAMILIES["bigger"], world, SplitSizes())
    assert (
        bigger.labels() is None and bigger.with_train(bigger.train[:4]).labels() is None
    )  # 4 answers are still free text


def test_a_backbone_is_measured_only_on_the_world_it_was_pretrained_on(micro_backbone):
    from lab.world.world import world_for_backbone

    out, _ = micro_backbone
    assert world_for_backbone(out, 0).cfg.seed == 0
    with pytest.raises(ValueError, match="pretrained on world seed 0, not 3"):
        world_for_backbone(out, 3)


def test_accuracy_cli_shots_option():
    import argparse

    from lab.accuracy import parse_shots
    from lab.grid import FULL

    assert [parse_shots(s) for s in ("4", "32", "full")] == [4, 32, FULL]
    for bad in ("0", "-4", "all", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integer or 'full'"):
            parse_shots(bad)
