"""Training stages on a tiny T5: gradients, frozen backbone, parameter counts, learning, seeds, resume."""

import json

import pytest
import torch

from prompts_store import DirectoryStore
from training.data.batching import Collator
from training.data.sampler import MultitaskSampler, Row
from training.loop import TrainConfig, Trainer
from training.prompt_params import PromptParams
from training.stages.adapt import AdaptConfig, adapt
from training.stages.distill import DistillConfig, distill
from training.stages.teachers import train_teachers, train_vanilla_prompt
from training.steps import distill_loss, task_loss

from ..conftest import assert_bit_identical, weights_snapshot

L = 4
SOURCES = ("polarity", "animal", "size")


def cfg(**kw):
    base = dict(steps=12, batch_size=6, lr=0.3, eval_every=6, eval_max_examples=8, seed=0)
    return TrainConfig(**(base | kw))


@pytest.fixture(scope="module")
def teachers_run(backbone, toy_tasks, tmp_path_factory):
    run = tmp_path_factory.mktemp("teachers")
    before = weights_snapshot(backbone.model)
    report = train_teachers(backbone, [toy_tasks[n] for n in SOURCES], run, L, "vocab", cfg())
    assert_bit_identical(before, backbone.model)
    return run, report


def test_teachers_count_and_store_vanilla_prompts(backbone, teachers_run):
    run, report = teachers_run
    d = backbone.d_model
    assert all(r["trainable_params"] == L * d for r in report.values())
    saved = json.loads((run / "run.json").read_text())
    assert saved["tasks"]["animal"]["trainable_params"] == L * d
    store = DirectoryStore(run / "store")
    assert store.list_tasks() == sorted(SOURCES)
    t = store.get_task("animal")
    assert torch.equal(t.u, torch.ones(L, 1)) and torch.equal(t.v, torch.ones(d, 1))  # P* = P, u = v = ones


@pytest.mark.parametrize(
    "distill_kw,expected",
    [
        ({}, lambda l, d, k: l * d + (l + d) * k),
        ({"rank": 2}, lambda l, d, k: l * d + (l + d) * 2 * k),
        ({"decompose": False}, lambda l, d, k: l * d),
        ({"distill": False}, lambda l, d, k: l * d + (l + d) * k),
    ],
)
def test_distill_counts_writes_store_and_keeps_backbone_frozen(
    backbone, toy_tasks, teachers_run, tmp_path, distill_kw, expected
):
    run, _ = teachers_run
    store = DirectoryStore(tmp_path / "store")
    before = weights_snapshot(backbone.model)
    dcfg = DistillConfig(**distill_kw)
    report = distill(backbone, [toy_tasks[n] for n in SOURCES], store, "src", cfg(), dcfg, tmp_path / "run", run)
    assert_bit_identical(before, backbone.model)
    assert report["trainable_params"] == expected(L, backbone.d_model, len(SOURCES))
    assert json.loads((tmp_path / "run" / "run.json").read_text())["trainable_params"] == report["trainable_params"]
    assert store.list_families() == ["src"] and store.list_tasks() == sorted(SOURCES)
    assert store.get_task("size").rank == distill_kw.get("rank", 1)
    if distill_kw.get("decompose") is False:
        assert torch.equal(store.get_task("size").u, torch.ones(L, 1))


@pytest.fixture(scope="module")
def source_store(backbone, toy_tasks, teachers_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    store = DirectoryStore(root / "store")
    distill(
        backbone, [toy_tasks[n] for n in SOURCES], store, "src", cfg(), DistillConfig(), root / "run", teachers_run[0]
    )
    return store


@pytest.mark.parametrize(
    "mode,targets,expected",
    [
        ("factors", ["temperature"], lambda l, d: l + d),
        ("full", ["temperature"], lambda l, d: l * d + l + d),
        ("group", ["temperature", "polarity"], lambda l, d: l * d + (l + d) * 2),
        ("prompt", ["temperature"], lambda l, d: l * d),
    ],
)
def test_adapt_modes_count_parameters_and_keep_backbone_frozen(
    backbone, toy_tasks, source_store, tmp_path, mode, targets, expected
):
    store = DirectoryStore(tmp_path / "store")
    store.put_family(source_store.get_family("src"))
    for n in SOURCES:
        store.put_task(source_store.get_task(n))
    before = weights_snapshot(backbone.model)
    new_family = None if mode == "factors" else f"new-{mode}"
    acfg = AdaptConfig(mode=mode, factor_init="mean", new_family=new_family, shots=16)
    report = adapt(
        backbone, [toy_tasks[t] for t in targets], store, "src", cfg(), acfg, tmp_path / "run", overwrite=True
    )
    assert_bit_identical(before, backbone.model)
    (result,) = report["results"].values()
    assert result["trainable_params"] == expected(L, backbone.d_model)
    assert all(n == 16 for n in result["train_examples"].values())
    for t in targets:
        assert store.get_task(t).family == (new_family or "src")
    if mode == "factors":  # P* untouched
        assert torch.equal(store.get_family("src").shared, source_store.get_family("src").shared)


def test_only_prompt_parameters_receive_gradients(backbone, toy_tasks):
    params = PromptParams.with_ones(torch.randn(L, backbone.d_model), 3, 1, train_shared=True, train_factors=True)
    collator = Collator(backbone.tokenizer, backbone.device)
    rows = [Row(0, e) for e in toy_tasks["polarity"].train[:4]] + [Row(2, e) for e in toy_tasks["size"].train[:4]]
    loss, _ = task_loss(backbone, params, collator)(rows)
    loss.backward()
    assert params.shared.grad is not None and params.shared.grad.abs().sum() > 0
    assert params.u[0].grad is not None and params.u[2].grad is not None
    assert params.u[1].grad is None and params.v[1].grad is None  # task 1 was not in the batch
    assert all(p.grad is None for p in backbone.model.parameters())


def test_same_seed_gives_the_same_numbers(backbone, toy_tasks, tmp_path):
    task = toy_tasks["animal"]
    p1, r1 = train_vanilla_prompt(backbone, task, L, "vocab", cfg(seed=3), tmp_path / "a", False, "a")
    p2, r2 = train_vanilla_prompt(backbone, task, L, "vocab", cfg(seed=3), tmp_path / "b", False, "b")
    p3, _ = train_vanilla_prompt(backbone, task, L, "vocab", cfg(seed=4), tmp_path / "c", False, "c")
    assert torch.equal(p1.shared, p2.shared)
    assert r1["final_train_loss"] == r2["final_train_loss"] and r1["metrics"] == r2["metrics"]
    assert not torch.equal(p1.shared, p3.shared)


def test_resume_after_a_crash_gives_the_same_result_as_one_run(backbone, toy_tasks, tmp_path):
    tasks = [toy_tasks[n].train for n in SOURCES]
    collator = Collator(backbone.tokenizer, backbone.device)
    c = cfg(steps=10, save_every=4, eval_every=0)

    def fresh():
        torch.manual_seed(0)
        return PromptParams.with_ones(torch.randn(L, backbone.d_model), 3, 1, True, True)

    whole = fresh()
    Trainer(whole, task_loss(backbone, whole, collator), MultitaskSampler(tasks, 6, 3, 0), c, tmp_path / "whole").run()

    crashed = fresh()
    inner, calls = task_loss(backbone, crashed, collator), []

    def crashing(rows):
        calls.append(1)
        if len(calls) == 7:  # dies during step 7; the last checkpoint is step 4
            raise KeyboardInterrupt
        return inner(rows)

    with pytest.raises(KeyboardInterrupt):
        Trainer(crashed, crashing, MultitaskSampler(tasks, 6, 3, 0), c, tmp_path / "crash").run()
    resumed = fresh()
    Trainer(
        resumed,
        task_loss(backbone, resumed, collator),
        MultitaskSampler(tasks, 6, 3, 0),
        c,
        tmp_path / "crash",
        resume=True,
    ).run()
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    state = json.loads((tmp_path / "crash" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 10 and sorted(
        p.name for p in (tmp_path / "crash" / "checkpoint").glob("*.safetensors")
    ) == ["optim-10.safetensors", "params-10.safetensors"]


def test_distillation_drives_the_kl_to_the_teacher_down(backbone, toy_tasks, teachers_run):
    run, _ = teachers_run
    from training.stages.distill import load_teachers

    tasks = [toy_tasks[n] for n in SOURCES]
    teachers = load_teachers(backbone, run, tasks)
    torch.manual_seed(0)
    student = PromptParams.with_ones(torch.randn(L, backbone.d_model) * 0.5, 3, 1, True, True)
    collator = Collator(backbone.tokenizer, backbone.device)
    step = distill_loss(backbone, student, teachers, collator, lam=1.0, temperature=2.0)
    probe = [Row(k, e) for k, t in enumerate(tasks) for e in t.split("dev")[:8]]
    with torch.no_grad():
        kl_before = step(probe)[1]["logits"]
    c = cfg(steps=60, batch_size=12, eval_every=0, lr=0.1)
    Trainer(student, step, MultitaskSampler([t.train for t in tasks], 12, 3, 0), c, run / "kl").run()
    with torch.no_grad():
        kl_after = step(probe)[1]["logits"]
    assert kl_after < 0.5 * kl_before, (kl_before, kl_after)


def test_a_teacher_learns_a_small_task_far_above_chance(toy_tasks, tmp_path):
    """Prompt tuning a frozen random T5 (d=128) on a keyword task: rank accuracy far above the
    majority baseline on the test split."""
    from mpt_core.backbone import load_backbone
    from training.tiny import TinyConfig, build_tiny_backbone

    bb = load_backbone(str(build_tiny_backbone(tmp_path / "t5", TinyConfig(d_model=128, layers=2))), device="cpu")
    task = toy_tasks["size"]
    _, report = train_vanilla_prompt(
        bb, task, 50, "vocab", cfg(steps=400, batch_size=16, eval_every=0), tmp_path / "run", False, "t"
    )
    m = report["metrics"]
    assert m["split"] == "test"
    assert m["rank_accuracy"] >= 0.85 and m["rank_accuracy"] >= m["majority"] + 0.3, m


def test_the_best_parameters_on_dev_are_the_ones_loaded_back(backbone, toy_tasks, tmp_path):
    """Best-on-dev keeps a copy of the parameters of its best evaluation, not a view of the live
    ones (on the CPU, ``.cpu()`` is no copy): a run whose dev score only falls ends with the
    parameters of its first evaluation, in memory and in the checkpoint's best file."""
    collator = Collator(backbone.tokenizer, backbone.device)
    torch.manual_seed(0)
    params = PromptParams.with_ones(torch.randn(L, backbone.d_model), 2, 1, True, True)
    seen = []

    def falling() -> dict[str, float]:
        seen.append({k: v.detach().clone() for k, v in params.state_dict().items()})
        return {"score": -float(len(seen))}

    tasks = [toy_tasks["animal"].train, toy_tasks["size"].train]
    sampler = MultitaskSampler(tasks, 6, 2, 0)
    result = Trainer(
        params, task_loss(backbone, params, collator), sampler, cfg(steps=9, eval_every=3), tmp_path, falling
    ).run()
    assert result.best_step == 3 and len(seen) == 3
    assert not torch.equal(seen[0]["shared"], seen[-1]["shared"])  # it did train on
    assert all(torch.equal(v, seen[0][k]) for k, v in params.state_dict().items())
    from training.checkpoint import load_tensors

    best = load_tensors(tmp_path / "checkpoint" / "best-9.safetensors")
    assert all(torch.equal(best[k], seen[0][k]) for k in best)
