"""`mpt tasks list|show|push|delete` against the real server on the tiny T5."""

import json

import pytest
import torch

from mpt_cli.main import main
from mpt_core import Family, Task
from prompts_store import open_store, task_to_bytes
from tests.service.serving import L, make_store, serve

TOKEN = "cli-token"


@pytest.fixture(scope="module")
def server(tiny_dir, backbone, tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks-cli")
    make_store(root / "store", backbone.fingerprint, backbone.d_model, tasks=3)
    with serve(tiny_dir, root / "store", admin_token=TOKEN) as (url, _):
        yield url, backbone


def mpt(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_show(server, capsys):
    url, _ = server
    code, out, _ = mpt(capsys, "tasks", "list", "--url", url)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["name"] for r in rows] == ["t0", "t1", "t2"]
    code, out, _ = mpt(capsys, "tasks", "list", "--url", url, "--family", "fam", "--limit", "2")
    assert code == 0 and len(out.splitlines()) == 2
    code, out, _ = mpt(capsys, "tasks", "show", "t1", "--url", url)
    assert code == 0 and json.loads(out)["rank"] == 2


def test_push_from_a_store_and_a_file_then_delete(server, capsys, tmp_path):
    url, backbone = server
    d = backbone.d_model
    with open_store(f"sqlite:///{tmp_path / 'local.db'}") as local:
        local.put_family(Family("fam", torch.randn(L, d), backbone.fingerprint))
        local.put_task(Task("mine", "fam", torch.randn(L, 1), torch.randn(d, 1)))
    store = f"sqlite:///{tmp_path / 'local.db'}"
    code, out, err = mpt(capsys, "tasks", "push", "--url", url, "--token", TOKEN, "--from", store, "--name", "mine")
    assert code == 0, err
    assert json.loads(out)["name"] == "mine"
    f = tmp_path / "t.safetensors"
    f.write_bytes(task_to_bytes(Task("fromfile", "fam", torch.randn(L, 2), torch.randn(d, 2))))
    code, out, err = mpt(capsys, "tasks", "push", "--url", url, "--token", TOKEN, "--file", f)
    assert code == 0 and json.loads(out)["rank"] == 2, err
    code, _, err = mpt(capsys, "tasks", "push", "--url", url, "--token", TOKEN, "--file", f)
    assert code == 2 and err.startswith("mpt tasks: error: 409 conflict:") and err[-1] == "\n" and err.count("\n") == 1
    code, out, err = mpt(capsys, "tasks", "push", "--url", url, "--token", TOKEN, "--file", f, "--replace")
    assert code == 0, err
    for name in ("mine", "fromfile"):
        assert mpt(capsys, "tasks", "delete", name, "--url", url, "--token", TOKEN)[0] == 0
    code, _, err = mpt(capsys, "tasks", "show", "mine", "--url", url)
    assert code == 2 and "404 not_found" in err


def test_a_missing_token_and_a_dead_server_are_one_line(server, capsys, monkeypatch):
    url, _ = server
    monkeypatch.delenv("MPT_ADMIN_TOKEN", raising=False)
    code, _, err = mpt(capsys, "tasks", "delete", "t0", "--url", url)
    assert code == 2 and "401 unauthorized" in err
    code, _, err = mpt(capsys, "tasks", "list", "--url", "http://127.0.0.1:9")
    assert code == 2 and "unreachable" in err and "Traceback" not in err
