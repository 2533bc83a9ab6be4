"""The whole CLI pipeline on generated data: backbone tiny -> teachers -> distill -> adapt -> eval -> predict."""

import json
import subprocess
import sys

import pytest

from mpt_cli.main import main

STEPS = ["--steps", "8", "--batch-size", "6", "--eval-max-examples", "8"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_cli_pipeline_end_to_end(tmp_path, capsys):
    bb, data, store = tmp_path / "t5", tmp_path / "data", tmp_path / "store"
    run(capsys, "backbone", "tiny", "--out", bb, "--d-model", 32, "--layers", 1)
    dirs = json.loads(run(capsys, "data", "toy", "--out", data, "--train", 60))
    src = [f"--task={n}={dirs[n]}" for n in ("polarity", "animal", "size")]
    model = ["--model", bb]

    teachers = json.loads(
        run(capsys, "train", "teachers", *model, *src, "--out", tmp_path / "teachers", "--prompt-length", 4, *STEPS)
    )
    assert set(teachers) == {"polarity", "animal", "size"} and teachers["size"]["trainable_params"] == 4 * 32

    distilled = json.loads(
        run(
            capsys,
            "train",
            "distill",
            *model,
            "--teachers",
            tmp_path / "teachers",
            *src,
            "--store",
            store,
            "--family",
            "src",
            "--out",
            tmp_path / "distill",
            *STEPS,
        )
    )
    assert distilled["trainable_params"] == 4 * 32 + (4 + 32) * 3

    target = f"--task=temperature={dirs['temperature']}"
    adapted = json.loads(
        run(
            capsys,
            "train",
            "adapt",
            *model,
            "--store",
            store,
            "--family",
            "src",
            target,
            "--mode",
            "factors",
            "--shots",
            16,
            "--out",
            tmp_path / "adapt",
            *STEPS,
        )
    )
    assert adapted["results"]["temperature"]["trainable_params"] == 4 + 32

    metrics = json.loads(run(capsys, "eval", *model, "--store", store, target))
    assert metrics["temperature"]["split"] == "test" and 0 <= metrics["temperature"]["rank_accuracy"] <= 1

    out = run(
        capsys, "predict", *model, "--store", store, "--task", "temperature", "--json", "hot or cold : fire one", "snow"
    )
    result = json.loads(out)
    assert (
        result["task"] == "temperature"
        and len(result["outputs"]) == 2
        and all(isinstance(o, str) for o in result["outputs"])
    )
    plain = run(capsys, "predict", *model, "--store", store, "--task", "temperature", "hot or cold : fire one", "snow")
    assert plain.splitlines() == result["outputs"]  # one output per input, the same greedy answers
    scored = json.loads(
        run(
            capsys,
            "predict",
            *model,
            "--store",
            store,
            "--task",
            "temperature",
            "--json",
            "--candidates",
            "hot,cold",
            "hot or cold : fire one",
        )
    )
    assert scored["outputs"][0] in {"hot", "cold"} and set(scored["scores"][0]) == {"hot", "cold"}

    run(capsys, "peft", "export", "--store", store, "--family", "src", "--out", tmp_path / "peft")
    imported = json.loads(
        run(
            capsys,
            "peft",
            "import",
            *model,
            "--adapter",
            tmp_path / "peft",
            "--store",
            tmp_path / "s2",
            "--family",
            "copy",
        )
    )
    assert imported["tasks"] == ["animal", "polarity", "size", "temperature"]


def test_cli_errors_are_one_line_messages(tmp_path, capsys):
    code = main(["predict", "--model", str(tmp_path / "missing"), "--store", str(tmp_path), "--task", "x", "hi"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mpt: error: ") and "Traceback" not in err
    code = main(["eval", "--model", "m", "--store", str(tmp_path), "--task", "Bad Name=/x"])
    assert code == 2 and "invalid task name 'Bad Name'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["train", "adapt", "--help"]])
def test_console_entry_point_runs(argv):
    proc = subprocess.run([sys.executable, "-m", "mpt_cli", *argv], capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: mpt" in proc.stdout
