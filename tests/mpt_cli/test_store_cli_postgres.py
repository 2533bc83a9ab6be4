"""`mpt store init|stats|copy` against a real PostgreSQL server (the session's throw-away one)."""

import json
from pathlib import Path

import torch

from mpt_cli.main import main
from prompts_store import open_store
from prompts_store.backends.postgres_schema import LATEST

DEMO = Path(__file__).resolve().parents[2] / "demo" / "store"


def run(capsys, *argv) -> dict:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_init_copy_and_stats_through_postgres(postgres_url, tmp_path, capsys):
    init = run(capsys, "store", "init", postgres_url)
    assert (init["backend"], init["head"], init["schema_version"]) == ("postgresql", 0, LATEST)
    copied = run(capsys, "store", "copy", DEMO, postgres_url, "--no-progress")
    stats = run(capsys, "store", "stats", postgres_url)
    assert stats["tasks"] == copied["tasks"] > 0 and stats["families"] == 1 and stats["disk_bytes"] > 0
    back = tmp_path / "back"
    run(capsys, "store", "copy", postgres_url, back, "--no-progress")
    with open_store(DEMO, create=False) as demo, open_store(back, create=False) as again:
        assert again.list_tasks() == demo.list_tasks()
        for name in demo.list_tasks():
            a, b = demo.get_task(name), again.get_task(name)
            assert torch.equal(a.u, b.u) and torch.equal(a.v, b.v) and a.created_at == b.created_at
    assert main(["store", "copy", str(DEMO), postgres_url, "--no-progress"]) == 2  # names taken, one line
    assert "already exists" in capsys.readouterr().err


def test_stats_of_an_unreachable_database_is_one_line(capsys):
    assert main(["store", "stats", "postgresql://someone:pw@/db?host=/nonexistent-socket-dir"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mpt: error: ") and "cannot connect" in err and "pw@" not in err and "Traceback" not in err
