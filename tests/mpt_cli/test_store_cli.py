"""`mpt store init|stats|copy`: the committed demo store copied to SQLite and back, factors identical."""

import json
from pathlib import Path

import torch

from mpt_cli.main import main
from prompts_store import open_store

DEMO = Path(__file__).resolve().parents[2] / "demo" / "store"


def run(capsys, *argv) -> dict:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_copy_demo_to_sqlite_and_back_keeps_every_factor(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert run(capsys, "store", "init", db)["head"] == 0
    copied = run(capsys, "store", "copy", DEMO, db, "--no-progress")
    with open_store(DEMO, create=False) as demo:
        names = demo.list_tasks()
        assert copied["tasks"] == len(names) and copied["families"] == 1 and copied["skipped"] == {}
        stats = run(capsys, "store", "stats", db)
        assert stats["backend"] == "sqlite" and stats["tasks"] == len(names) and stats["families"] == 1
        back = tmp_path / "back"
        run(capsys, "store", "copy", db, back, "--no-progress")
        with open_store(back, create=False) as again:
            assert again.list_tasks() == names
            for name in names:
                a, b = demo.get_task(name), again.get_task(name)
                assert torch.equal(a.u, b.u) and torch.equal(a.v, b.v)
                assert (a.family, a.created_at, a.source) == (b.family, b.created_at, b.source)
            assert torch.equal(demo.get_family("lab").shared, again.get_family("lab").shared)


def test_copy_refuses_to_overwrite_without_the_flag(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'store.db'}"
    run(capsys, "store", "copy", DEMO, db, "--no-progress")
    assert main(["store", "copy", str(DEMO), db, "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert run(capsys, "store", "copy", DEMO, db, "--no-progress", "--overwrite")["tasks"] > 0


def test_stats_of_a_missing_store_is_one_line(tmp_path, capsys):
    assert main(["store", "stats", f"sqlite:///{tmp_path / 'nope.db'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mpt: error: ") and "Traceback" not in err
