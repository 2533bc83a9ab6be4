import json
from collections import Counter

import pytest

from training.data.examples import Example, TaskData, k_shot, load_task, load_tasks, parse_task_spec


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_jsonl_and_csv_splits(tmp_path):
    _write(tmp_path / "train.jsonl", [{"input": "a", "target": "x"}, {"input": "b", "target": "y"}])
    (tmp_path / "dev.csv").write_text('input,target\n"c, with comma",x\n')
    task = load_task("t", tmp_path)
    assert task.train == [Example("a", "x"), Example("b", "y")]
    assert task.split("dev") == [Example("c, with comma", "x")]
    assert task.eval_split() == "dev" and task.labels() == ["x", "y"]
    with pytest.raises(ValueError, match="no 'test' split"):
        task.split("test")


def test_errors_name_file_and_line(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"input": "a", "target": "x"}\nnot json\n')
    with pytest.raises(ValueError, match=r"train.jsonl:2: not JSON"):
        load_task("t", tmp_path)
    (tmp_path / "train.jsonl").write_text('{"input": "a"}\n')
    with pytest.raises(ValueError, match=r"train.jsonl:1: expected an object"):
        load_task("t", tmp_path)
    (tmp_path / "train.jsonl").unlink()
    with pytest.raises(ValueError, match="no train.jsonl"):
        load_task("t", tmp_path)


def test_task_specs(tmp_path):
    assert parse_task_spec("rte=/data/rte") == ("rte", "/data/rte")
    with pytest.raises(ValueError, match="NAME=DIR"):
        parse_task_spec("rte")
    with pytest.raises(ValueError, match="invalid task name"):
        parse_task_spec("../x=/d")
    _write(tmp_path / "train.jsonl", [{"input": "a", "target": "x"}])
    with pytest.raises(ValueError, match="given twice"):
        load_tasks([f"a={tmp_path}", f"a={tmp_path}"])


def test_k_shot_is_seeded_and_stratified():
    pool = [Example(f"in{i}", "pos" if i % 4 else "neg") for i in range(100)]
    a, b = k_shot(pool, 16, seed=7), k_shot(pool, 16, seed=7)
    assert a == b and len(a) == 16 and len(set(a)) == 16
    assert Counter(e.target for e in a) == {"pos": 8, "neg": 8}
    assert k_shot(pool, 16, seed=8) != a
    assert k_shot(pool, 500, seed=0) == pool


def test_with_train_keeps_the_whole_tasks_label_set():
    train = [Example(f"x{i}", "abc"[i % 3]) for i in range(30)]
    task = TaskData("t", {"train": train, "dev": train[:3]})
    few = task.with_train(train[:2])  # a k-shot subset that misses label "c"
    assert few.labels() == ["a", "b", "c"] and few.train == train[:2] and few.splits["dev"] == train[:3]
    free = TaskData("f", {"train": [Example(str(i), f"answer {i}") for i in range(40)]})
    assert free.labels() is None and free.with_train(free.train[:4]).labels() is None
    assert TaskData("f", {"train": free.train[:4]}).labels() is not None  # what inferring from 4 rows would say
