"""Backend-generic store fixtures: every test that takes ``store_url`` or ``store`` runs once per backend.

A PostgreSQL backend joins by adding "postgresql" to BACKENDS and a branch in ``store_url`` that
starts (or reuses) a throw-away server and returns its URL.
"""

from __future__ import annotations

import pytest

from prompts_store import open_store

BACKENDS = ["sqlite", "directory"]


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"  # an absolute path: sqlite:////...
    return str(tmp_path / "store")


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    yield s
    s.close()
