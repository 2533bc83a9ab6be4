"""Every response names the replica that answered (x-mpt-replica), whatever answered it."""

import os
import socket

import httpx
import pytest

from service.replica import replica_id

from .serving import make_store, serve


def test_every_response_carries_the_replica_id(tiny_dir, backbone, tmp_path, monkeypatch):
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=1)
    monkeypatch.delenv("MPT_REPLICA_ID", raising=False)
    with serve(tiny_dir, tmp_path / "s", max_body_bytes=2048) as (url, _):
        expected = f"{socket.gethostname()}-{os.getpid()}"
        answers = [
            httpx.get(f"{url}/predict", params={"task": "t0", "input": "x", "max_new_tokens": 2}),  # 200
            httpx.get(f"{url}/predict", params={"task": "nope", "input": "x"}),  # 404 from a route
            httpx.post(f"{url}/tasks", content=b"x" * 4096, headers={"content-type": "application/json"}),  # 413
            httpx.get(f"{url}/no-such-path"),  # 404 from the router
            httpx.get(f"{url}/metrics"),
        ]
        assert [r.status_code for r in answers] == [200, 404, 413, 404, 200]
        assert {r.headers.get("x-mpt-replica") for r in answers} == {expected}


def test_the_id_comes_from_mpt_replica_id_and_is_checked(monkeypatch):
    monkeypatch.setenv("MPT_REPLICA_ID", "pod-7f9c.zone-a")
    assert replica_id() == "pod-7f9c.zone-a"
    monkeypatch.setenv("MPT_REPLICA_ID", "two words\r\n")
    with pytest.raises(ValueError, match="MPT_REPLICA_ID='two words"):
        replica_id()
