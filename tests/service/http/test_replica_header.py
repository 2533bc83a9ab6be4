"""Every response names the replica that answered (x-mpt-replica), whatever answered it."""

import os
import socket

import httpx
import pytest

from service.http.replica import replica_id

from ..serving import make_store, serve


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


def test_requests_refused_by_the_http_protocol_name_the_replica_too(tiny_dir, backbone, tmp_path, monkeypatch):
    """Malformed or over-long request heads are answered by the HTTP protocol before the app sees
    them (``service.http.http_protocol``): the same error body as the app's, and ``x-mpt-replica``."""
    import threading

    import uvicorn

    from service.__main__ import uvicorn_config
    from service.http.app import create_app
    from service.http.errors import error_body
    from service.settings import Settings

    from ..serving import store_url

    monkeypatch.setenv("MPT_REPLICA_ID", "pod-a.zone-1")
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=1)
    s = Settings(model=str(tiny_dir), store=store_url(tmp_path / "s"), port=0, log_level="warning", max_head_bytes=4096)
    server = uvicorn.Server(uvicorn_config(create_app(s), s))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive()
            threading.Event().wait(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        for request, status in (
            (b"GARBAGE\r\n\r\n", 400),
            (b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n", 431),
        ):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.settimeout(10)
                sock.sendall(request)
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode().lower().split("\r\n")
            assert int(lines[0].split()[1]) == status
            assert "x-mpt-replica: pod-a.zone-1" in lines
            err = httpx.Response(status, content=body).json()["error"]
            assert body == error_body(err["code"], err["message"])  # the app's one error body, byte for byte
    finally:
        server.should_exit = True
        thread.join(timeout=30)
