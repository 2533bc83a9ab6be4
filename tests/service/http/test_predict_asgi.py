"""``POST /predict`` is answered by the lean ASGI endpoint (``service.http.predict_asgi``), not by
FastAPI's route; both must give the same answer to every request: status, headers and body,
byte for byte. One real server; each request is sent twice, once with the endpoint switched off
(``app.predict = None``: FastAPI's route answers) and once with it on."""

import json

import httpx
import pytest

from ..serving import make_store, serve

J = {"content-type": "application/json"}
TEXT = {"content-type": "text/plain"}


def chunked(*pieces: bytes):
    yield from pieces


CASES = [  # (query, headers, body); a generator body is sent chunked (no content-length)
    ("task=t0", J, b'{"inputs": "hello"}'),
    ("task=t1", J, b'{"inputs": ["hello", "world"], "max_new_tokens": 3}'),
    ("task=t0", J, b'{"inputs": ["hello"], "candidates": ["yes", "no"]}'),
    ("task=t0", {"content-type": "application/vnd.api+json"}, b'{"inputs": "a", "candidates": ["yes"]}'),
    ("task=t0", {"content-type": "application/json; charset=utf-8"}, b'{"inputs": "a"}'),
    ("task=t0", {}, b'{"inputs": "a"}'),  # no content type: JSON
    ("task=t0", J, '{"inputs": "caf\u00e9 \u2603", "candidates": ["\u00e9t\u00e9", "no"]}'.encode()),
    ("task=t0", TEXT, b'{"inputs": "a"}'),  # 415
    ("task=t0", J, b'{"inputs": "a", "extra": 1}'),  # 422 from here on
    ("task=t0", J, b'{"inputs": [1, 2]}'),
    ("task=t0", J, b'{"inputs": "a", "max_new_tokens": 0}'),
    ("task=t0", J, b'{"inputs": "a", "max_new_tokens": 2.5}'),
    ("task=t0", J, b'{"inputs": []}'),
    ("task=t0", J, b"{}"),
    ("task=t0", J, b"[]"),
    ("task=t0", J, b""),
    ("task=t0", J, b'{"inputs": "x"'),
    ("task=t0", J, b'{"inputs": "\xff"}'),
    ("task=t0", J, b'{"inputs": "\\ud800"}'),
    ("task=t0", J, b'{"inputs": "x", "candidates": []}'),
    ("task=t0", J, b'{"inputs": "a", "max_new_tokens": 1000}'),  # 413 from here on
    ("task=t0", J, json.dumps({"inputs": "x", "candidates": ["a"] * 40}).encode()),
    ("task=t0", J, json.dumps({"inputs": ["a"] * 100}).encode()),
    ("task=t0", J, json.dumps({"inputs": "a" * 1000}).encode()),
    ("task=t0", J, b'{"inputs": "' + b"a" * 5000 + b'"}'),  # over the body limit by its content-length
    ("task=t0", J, chunked(b'{"inputs": "', b"a" * 3000, b'"}')),  # over it while reading
    ("task=t0", J, chunked(b'{"inputs": ', b'"chunked"}')),  # chunked and fine
    ("task=nope", J, b'{"inputs": "a"}'),  # 404
    ("task=Bad%20Name", J, b'{"inputs": "a"}'),  # 422: names
    ("task=", J, b'{"inputs": "a"}'),
    ("", J, b'{"inputs": "a"}'),  # no task
    ("foo=1", J, b'{"inputs": "a"}'),
    ("task=nope&task=t1", J, b'{"inputs": "a"}'),  # the last one counts
    ("task=t%31", J, b'{"inputs": "a"}'),
    ("task=t0+", J, b'{"inputs": "a"}'),
]


@pytest.fixture(scope="module")
def server(tiny_dir, backbone, tmp_path_factory):
    store = tmp_path_factory.mktemp("asgi") / "store"
    make_store(store, backbone.fingerprint, backbone.d_model, tasks=2)
    with serve(tiny_dir, store, max_input_tokens=64, max_body_bytes=2048, max_new_tokens=16) as (url, app):
        yield url, app


def answer(url: str, query: str, headers: dict, body) -> tuple[int, list, bytes]:
    content = body if isinstance(body, bytes) else chunked(*list(body))  # a fresh generator per send
    r = httpx.post(f"{url}/predict" + (f"?{query}" if query else ""), content=content, headers=headers)
    return r.status_code, [(k, v) for k, v in r.headers.multi_items() if k not in ("date", "server")], r.content


@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_lean_endpoint_answers_as_the_fastapi_route(server, case):
    url, app = server
    query, headers, body = CASES[case]
    pieces = None if isinstance(body, bytes) else list(body)
    lean = app.predict
    assert lean is not None
    try:
        app.predict = None
        expected = answer(url, query, headers, body if pieces is None else pieces)
    finally:
        app.predict = lean
    got = answer(url, query, headers, body if pieces is None else pieces)
    assert got == expected
    assert ("x-mpt-replica", lean.replica[1].decode()) in got[1]


def test_the_cases_cover_every_outcome(server):
    """The comparison above means something only if the cases reach every status of the endpoint."""
    url, _ = server
    statuses = {answer(url, q, h, b if isinstance(b, bytes) else list(b))[0] for q, h, b in CASES}
    assert statuses == {200, 404, 413, 415, 422}


def test_the_lean_endpoint_counts_requests_in_flight_and_in_the_metrics(server):
    url, app = server

    def predict_count() -> float:
        for line in httpx.get(f"{url}/metrics").text.splitlines():
            if line.startswith('mpt_request_seconds_count{method="POST",route="/predict"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = predict_count()
    httpx.post(f"{url}/predict?task=t0", json={"inputs": "a"})
    httpx.post(f"{url}/predict?task=nope", json={"inputs": "a"})
    assert predict_count() == before + 2
    assert app.state.in_flight.count == 0
