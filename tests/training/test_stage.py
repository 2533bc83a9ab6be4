"""The stage skeleton: a stage gives exactly the numbers of its building blocks, the per-step hook
sees every step without changing a number and can cancel a run, a name clash is a Conflict."""

import pytest
import torch

from mpt_core import Family, Task
from prompts_store import Conflict, DirectoryStore
from training.data.batching import Collator
from training.data.examples import TaskData, k_shot
from training.data.sampler import SingleTaskSampler
from training.loop import TrainConfig, Trainer
from training.prompt_params import PromptParams
from training.stages.adapt import AdaptConfig, adapt
from training.stages.stage import dev_evaluator, task_seed
from training.steps import task_loss

L = 4
SOURCES = ("alpha", "beta")


def cfg(**kw):
    return TrainConfig(**(dict(steps=12, batch_size=6, lr=0.3, eval_every=4, eval_max_examples=8, seed=5) | kw))


def source_store(root, backbone) -> DirectoryStore:
    """Family 'src' with two rank-one source tasks (random, so that their mean is no trivial init)."""
    gen = torch.Generator().manual_seed(0)
    d = backbone.d_model
    store = DirectoryStore(root)
    store.put_family(Family("src", torch.randn(L, d, generator=gen), backbone.fingerprint))
    for name in SOURCES:
        u, v = 1 + 0.1 * torch.randn(L, 1, generator=gen), 1 + 0.1 * torch.randn(d, 1, generator=gen)
        store.put_task(Task(name, "src", u, v))
    return store


def test_adapt_factors_gives_exactly_the_numbers_of_its_building_blocks(backbone, toy_tasks, tmp_path):
    """Pins the stage's numbers: seeds, k-shot subset, factor init (mean of the family's tasks),
    sampler, loss, loop and best-on-dev selection; with a per-step hook attached."""
    store, task, c = source_store(tmp_path / "store", backbone), toy_tasks["temperature"], cfg()
    seen = []

    def on_step(step, steps, loss, logs, dev):
        seen.append((step, steps, loss, sorted(logs), dev))

    report = adapt(backbone, [task], store, "src", c, AdaptConfig(shots=16), tmp_path / "run", on_step=on_step)

    # the same run from the building blocks, by hand
    seed = task_seed(c.seed, task.name)
    small = task.with_train(k_shot(task.train, 16, task_seed(c.seed, task.name)))
    members = [store.get_task(n) for n in SOURCES]
    u0, v0 = torch.stack([t.u for t in members]).mean(0), torch.stack([t.v for t in members]).mean(0)
    torch.manual_seed(seed)
    params = PromptParams(store.get_family("src").shared, u0[None], v0[None], train_shared=False, train_factors=True)
    collator = Collator(backbone.tokenizer, backbone.device, c.max_input_tokens, c.max_target_tokens)
    sampler = SingleTaskSampler(small.train, c.batch_size, seed)
    evaluate = dev_evaluator(backbone, params, [small], collator, c)
    result = Trainer(params, task_loss(backbone, params, collator), sampler, c, tmp_path / "hand", evaluate).run()

    stored = store.get_task("temperature")
    assert torch.equal(stored.u, params.u[0].detach()) and torch.equal(stored.v, params.v[0].detach())
    res = report["results"]["temperature"]
    assert (res["final_train_loss"], res["best_step"], res["best_dev_score"]) == (
        result.final_loss,
        result.best_step,
        result.best_score,
    )
    assert report["factor_init"] == "mean of 2 source tasks" and res["train_examples"] == {"temperature": 16}
    # the hook saw every step, in order, with the smoothed loss, and dev scores where it evaluated
    assert [s[0] for s in seen] == list(range(1, 13)) and {s[1] for s in seen} == {12}
    assert seen[-1][2] == result.final_loss and all(s[3] == ["plm"] for s in seen)
    assert [s[0] for s in seen if s[4] is not None] == [4, 8, 12]
    assert all({"score", "exact_match", "rank_accuracy"} <= set(s[4]) for s in seen if s[4])  # a job's progress


class Cancelled(Exception):
    pass


def test_raising_from_the_hook_cancels_the_run_and_writes_nothing(backbone, toy_tasks, tmp_path):
    store = source_store(tmp_path / "store", backbone)
    before = store.head()
    steps = []

    def cancel_at_3(step, *_):
        steps.append(step)
        if step == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        adapt(
            backbone,
            [toy_tasks["temperature"]],
            store,
            "src",
            cfg(),
            AdaptConfig(),
            tmp_path / "run",
            on_step=cancel_at_3,
        )
    assert steps == [1, 2, 3]
    assert not store.has_task("temperature") and store.head() == before
    assert not (tmp_path / "run" / "run.json").exists()


@pytest.mark.parametrize(
    "mode,new_family,clash",
    [("factors", None, "task alpha"), ("full", "alpha-full", "family alpha-full, task alpha")],
)
def test_a_name_clash_is_a_conflict_refused_before_training(backbone, toy_tasks, tmp_path, mode, new_family, clash):
    store = source_store(tmp_path / "store", backbone)
    store.put_family(Family("alpha-full", torch.zeros(L, backbone.d_model), backbone.fingerprint))
    target = TaskData("alpha", toy_tasks["temperature"].splits)  # the name of a stored task
    steps = []
    with pytest.raises(Conflict, match=f"already in the store: {clash}; pass --overwrite"):
        acfg = AdaptConfig(mode=mode, new_family=new_family)
        adapt(backbone, [target], store, "src", cfg(), acfg, tmp_path / "run", on_step=lambda s, *_: steps.append(s))
    assert steps == [] and store.get_task("alpha").family == "src"


def test_without_a_run_directory_nothing_goes_to_disk_and_the_numbers_are_the_same(
    backbone, toy_tasks, tmp_path, monkeypatch
):
    """What a training job does (it never resumes): no checkpoints, history or run.json."""
    with_dir, without = source_store(tmp_path / "a", backbone), source_store(tmp_path / "b", backbone)
    task, c = toy_tasks["temperature"], cfg(save_every=2)
    report = adapt(backbone, [task], with_dir, "src", c, AdaptConfig(shots=16), tmp_path / "run")
    assert (tmp_path / "run" / "run.json").is_file() and any((tmp_path / "run").rglob("*.safetensors"))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    bare = adapt(backbone, [task], without, "src", c, AdaptConfig(shots=16), None)
    assert list(work.iterdir()) == []
    assert torch.equal(without.get_task("temperature").u, with_dir.get_task("temperature").u)
    assert torch.equal(without.get_task("temperature").v, with_dir.get_task("temperature").v)
    strip = lambda r: {k: v for k, v in r["results"]["temperature"].items() if k != "seconds"}  # noqa: E731
    assert strip(bare) == strip(report)
    with pytest.raises(ValueError, match="resume needs a run directory"):
        adapt(backbone, [task], without, "src", c, AdaptConfig(shots=16), None, resume=True, overwrite=True)


class Upload:
    """``on_step`` that stores a task named ``name`` at step ``at`` of the first run that reaches it: an
    upload racing the training under a name the stage is about to write."""

    def __init__(self, store, name: str, family: str, at: int = 2):
        self.store, self.name, self.family, self.at, self.done = store, name, family, at, False

    def __call__(self, step, *_):
        if step == self.at and not self.done:
            fam = self.store.get_family(self.family)
            self.store.put_task(Task(self.name, fam.name, torch.ones(fam.length, 1), torch.ones(fam.d, 1)))
            self.done = True


def test_adapt_writes_all_its_tasks_in_one_transaction_or_none(backbone, toy_tasks, tmp_path):
    store = source_store(tmp_path / "store", backbone)
    targets = [toy_tasks["temperature"], toy_tasks["polarity"]]
    race = Upload(store, "polarity", "src")
    with pytest.raises(Conflict, match="'polarity' already exists"):
        adapt(backbone, targets, store, "src", cfg(steps=3), AdaptConfig(), tmp_path / "run", on_step=race)
    assert race.done and not store.has_task("temperature")  # the first target is not written alone
    assert store.get_task("polarity").source != "mpt:adapt:factors:from=src"


def test_distill_writes_its_tasks_in_one_transaction_or_none(backbone, toy_tasks, tmp_path):
    from training.config import DistillConfig
    from training.stages.distill import distill

    store = source_store(tmp_path / "store", backbone)
    tasks = [toy_tasks[n] for n in ("polarity", "animal", "size")]
    dcfg = DistillConfig(distill=False, shared_init="random", prompt_length=L)
    race = Upload(store, "size", "src")  # into the source family: the stage's own family does not exist yet
    with pytest.raises(Conflict, match="'size' already exists"):
        distill(backbone, tasks, store, "mpt", cfg(steps=3), dcfg, tmp_path / "run", on_step=race)
    assert race.done and not store.has_task("polarity") and not store.has_task("animal")


def test_the_final_dev_metrics_reuse_the_best_evaluation_and_equal_a_fresh_one(
    backbone, toy_tasks, tmp_path, monkeypatch
):
    import training.stages.stage as stage
    from mpt_core import compose
    from training.evaluate import evaluate_prompt

    calls = []
    monkeypatch.setattr(stage, "evaluate_prompt", lambda *a, **k: calls.append(1) or evaluate_prompt(*a, **k))
    store, full = source_store(tmp_path / "store", backbone), toy_tasks["temperature"]
    task = TaskData("temperature", {"train": full.train[:16], "dev": full.split("dev")[:8]})  # no test split
    report = adapt(backbone, [task], store, "src", cfg(), AdaptConfig(), None)
    assert len(calls) == 3  # steps 4, 8, 12; none more for the final metrics on dev
    t, fam = store.get_task("temperature"), store.get_family("src")
    prompt = compose(fam.shared, t.u[None], t.v[None])[0]
    collator = Collator(backbone.tokenizer, backbone.device)
    fresh = evaluate_prompt(backbone, prompt, task, task.split("dev"), collator, cfg().eval_batch_size)
    assert report["results"]["temperature"]["metrics"]["temperature"] == {"split": "dev", **fresh}
