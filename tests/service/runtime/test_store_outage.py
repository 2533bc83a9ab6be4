"""A store that is busy or unreachable answers 503 + Retry-After (the client may retry), not 500."""

import subprocess
import sys

import httpx

from prompts_store import ChangesUnavailable, Conflict, NotFound, StoreError
from service.http.errors import store_status

from ..serving import factors_json, make_store, serve

HOLD_THE_WRITE_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")  # another process holds the store's write lock
print("locked", flush=True)
sys.stdin.readline()
"""


def test_a_write_lock_held_past_the_busy_timeout_is_503_with_retry_after(tiny_dir, backbone, tmp_path):
    make_store(tmp_path, backbone.fingerprint, backbone.d_model, tasks=1)
    with serve(tiny_dir, tmp_path) as (url, app):
        store = app.state.service.state.store
        store.busy_timeout_s = 0.2  # connections opened from now on
        for _, conn in store._conns:  # and those open already
            conn.execute("PRAGMA busy_timeout = 200")
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_THE_WRITE_LOCK, str(tmp_path / "store.db")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout.readline().strip() == "locked"
            busy = httpx.post(f"{url}/tasks", json=factors_json("late", backbone.d_model, 1))
            assert busy.status_code == 503, busy.text
            assert busy.headers["retry-after"] == "1" and busy.json()["error"]["code"] == "store_error"
            assert httpx.delete(f"{url}/tasks/t0").status_code == 503
        finally:
            holder.communicate("\n", timeout=10)
        assert httpx.post(f"{url}/tasks", json=factors_json("late", backbone.d_model, 1)).status_code == 201
        assert httpx.get(f"{url}/tasks/late").status_code == 200


def test_store_errors_map_to_the_requests_fault_or_to_503():
    assert store_status(NotFound("x")) == 404 and store_status(Conflict("x")) == 409
    assert store_status(StoreError("database unavailable")) == 503
    assert store_status(ChangesUnavailable("reload")) == 503
