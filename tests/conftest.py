"""Shared fixtures: a tiny T5 + tokenizer built locally (no hub), generated task data."""

from __future__ import annotations

import os

# Busy-waiting OpenMP threads make the suite ~10x slower on a CPU shared with another job; read when torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never wait on a hub request
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from training.tiny import TinyConfig, build_tiny_backbone

    return build_tiny_backbone(tmp_path_factory.mktemp("tiny") / "t5", TinyConfig(d_model=32, layers=2, heads=4))


@pytest.fixture(scope="session")
def backbone(tiny_dir):
    from mpt_core.backbone import load_backbone

    return load_backbone(str(tiny_dir), device="cpu")


@pytest.fixture(scope="session")
def toy_dirs(tmp_path_factory):
    from training.data.toy import write_toy_tasks

    return write_toy_tasks(tmp_path_factory.mktemp("toy"), seed=0, n_train=200, n_dev=40, n_test=50)


@pytest.fixture(scope="session")
def toy_tasks(toy_dirs):
    from training.data.examples import load_task

    return {name: load_task(name, d) for name, d in toy_dirs.items()}


def weights_snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_bit_identical(before: dict[str, torch.Tensor], model: torch.nn.Module) -> None:
    after = model.state_dict()
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, f"backbone weights changed: {changed[:5]}"
    assert not any(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


@pytest.fixture(scope="session")
def postgres_server():
    """A throw-away PostgreSQL server for the whole session (Unix socket only; see tests/pg_server.py).

    Skips, saying why, where the server binaries or psycopg are missing (CI installs both)."""
    from tests.pg_server import LocalPostgres, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = LocalPostgres().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the session's server (dropped after the test)."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)
