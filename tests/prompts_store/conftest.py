"""Backend-generic store fixtures: every test that takes ``store_url`` or ``store`` runs once per backend.

PostgreSQL runs on the session's throw-away server (``postgres_server`` in tests/conftest.py), one
fresh database per test; where the binaries or psycopg are missing those cases skip, saying why.
"""

from __future__ import annotations

import pytest

from prompts_store import open_store

BACKENDS = ["sqlite", "directory", "postgresql"]


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"  # an absolute path: sqlite:////...
    return str(tmp_path / "store")


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    yield s
    s.close()
