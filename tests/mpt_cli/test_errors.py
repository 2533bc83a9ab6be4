"""Failures end in one line `mpt: error: ...` (MPT_DEBUG=1: the exception itself): a diverging run,
a name clash in the store (the store's Conflict)."""

import pytest
import torch

from mpt_cli.main import main
from mpt_core import Family, Task
from prompts_store import Conflict, DirectoryStore

SHORT = ["--steps", "8", "--batch-size", "4", "--eval-every", "0"]


def test_a_diverging_run_is_one_line_naming_the_step_and_the_loss(tiny_dir, toy_dirs, tmp_path, capsys):
    argv = ["train", "teachers", "--model", str(tiny_dir), "--task", f"animal={toy_dirs['animal']}"]
    code = main([*argv, "--out", str(tmp_path / "run"), "--prompt-length", "4", "--lr", "1e25", *SHORT])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("mpt: error: teacher animal: loss became nan at step ") and last.endswith("; lower the lr")


@pytest.fixture
def store_with_clash(tmp_path, backbone):
    """Family 'src' (for the CLI's backbone) holding a task 'temperature', and a family 'spot'."""
    store = DirectoryStore(tmp_path / "store")
    store.put_family(Family("src", torch.ones(4, backbone.d_model), backbone.fingerprint))
    store.put_family(Family("spot", torch.ones(4, backbone.d_model), backbone.fingerprint))
    store.put_task(Task("temperature", "src", torch.ones(4, 1), torch.ones(backbone.d_model, 1)))
    return tmp_path / "store"


@pytest.mark.parametrize(
    "stage,extra,clash",
    [
        ("adapt", ["--task", "temperature"], "task temperature"),
        ("distill", ["--task", "polarity", "--task", "temperature", "--no-distill", "--shared-init", "vocab"],
         "family src, task temperature"),
        ("spot", ["--task", "polarity", "--task", "size", "--family", "spot"], "family spot"),
    ],
)  # fmt: skip
def test_a_name_clash_raises_the_stores_conflict(
    tiny_dir, toy_dirs, store_with_clash, tmp_path, capsys, monkeypatch, stage, extra, clash
):
    extra = [f"{a}={toy_dirs[a]}" if a in toy_dirs else a for a in extra]
    argv = ["train", stage, "--model", str(tiny_dir), "--store", str(store_with_clash), "--family", "src", *extra]
    argv += ["--out", str(tmp_path / "run"), *SHORT]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"mpt: error: already in the store: {clash}; pass --overwrite to replace\n")
    assert "trainable parameters" not in err  # refused before training
    monkeypatch.setenv("MPT_DEBUG", "1")
    with pytest.raises(Conflict, match="already in the store"):
        main(argv)
