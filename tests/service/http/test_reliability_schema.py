"""The OpenAPI document tells the truth, checked by schemathesis (every check) against the live
server, and the docs pages work without internet."""

import re
import subprocess
import sys
from pathlib import Path

import httpx

from ..serving import make_store, serve

HERE = Path(__file__).parent
TOKEN = "schema-test-token"


def test_schemathesis_with_every_check_finds_no_failure(tiny_dir, backbone, tmp_path):
    """A short, seeded pass (all phases: examples, coverage, fuzzing, stateful) with the admin
    token, so uploads really happen. The config only lets 422/413 answer what no JSON Schema can
    state (see schemathesis.toml); any other check failure fails this test."""
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model)
    with serve(tiny_dir, tmp_path / "s", admin_token=TOKEN) as (url, _):
        cli = Path(sys.executable).with_name("schemathesis")
        args = [str(cli), "--no-color", "--config-file", str(HERE / "schemathesis.toml"), "run"]
        # every check runs by default; `--checks all` would also override the per-operation exceptions of the config
        args += [f"{url}/openapi.json", "--header", f"Authorization: Bearer {TOKEN}"]
        args += ["--seed", "20261126", "--max-examples", "4", "--max-time", "40", "--workers", "1"]
        args += ["--suppress-health-check", "all", "--warnings", "off"]
        run = subprocess.run(args, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", out)
    assert generated and int(generated[1]) >= 200 and generated[1] == generated[2], out[-3000:]


def test_the_schema_states_errors_names_minimums_and_media_types(tiny_dir, backbone, tmp_path):
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=1)
    with serve(tiny_dir, tmp_path / "s", admin_token=TOKEN) as (url, _):
        doc = httpx.get(f"{url}/openapi.json").json()
    with serve(tiny_dir, tmp_path / "s") as (url, _):
        open_doc = httpx.get(f"{url}/openapi.json").json()
    paths = doc["paths"]
    error_ref = "#/components/schemas/ErrorBody"
    for path, operations in paths.items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")) and path != "/health/ready":
                    assert response["content"]["application/json"]["schema"]["$ref"] == error_ref, (method, path)
    assert {"404", "413", "415", "422", "429", "503", "504"} <= set(paths["/predict"]["post"]["responses"])
    assert {"401", "403", "404", "409", "413", "415", "422", "503"} <= set(paths["/tasks"]["post"]["responses"])
    assert {"200", "201"} <= set(paths["/tasks/{name}"]["put"]["responses"])
    assert "retry-after" in {h.lower() for h in paths["/predict"]["post"]["responses"]["429"]["headers"]}
    name = next(p for p in paths["/tasks/{name}"]["get"]["parameters"] if p["name"] == "name")
    assert name["schema"]["pattern"] == "^[a-z0-9][a-z0-9_.-]{0,63}$"
    task = next(p for p in paths["/predict"]["post"]["parameters"] if p["name"] == "task")
    assert task["schema"]["pattern"] == name["schema"]["pattern"]
    body = paths["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {"type": "array", "items": {"type": "string"}, "minItems": 1} in body["inputs"]["anyOf"]
    assert body["candidates"]["anyOf"][0]["minItems"] == 1
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    assert paths["/tasks"]["post"]["security"] == [{"HTTPBearer": []}]
    # without a token, admin calls are open: no credentials are documented, and no 401 / 403
    open_post = open_doc["paths"]["/tasks"]["post"]
    assert "security" not in open_post and not {"401", "403"} & set(open_post["responses"])
    assert "securitySchemes" not in open_doc.get("components", {})


def test_docs_and_redoc_need_no_internet(tiny_dir, backbone, tmp_path):
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=1)
    with serve(tiny_dir, tmp_path / "s") as (url, _):
        for page in ("/docs", "/redoc"):
            html = httpx.get(f"{url}{page}")
            assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
            assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html.text), html.text  # no external URL
            assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
            assert assets and all(a.startswith("/docs-assets/") for a in assets), assets
            for asset in assets:
                r = httpx.get(f"{url}{asset}")
                kind = {"js": "text/javascript", "css": "text/css", "png": "image/png"}[asset.rsplit(".", 1)[1]]
                assert r.status_code == 200 and r.headers["content-type"].startswith(kind) and len(r.content) > 1000
        assert '"validatorUrl": null' in httpx.get(f"{url}/docs").text  # Swagger UI would ask validator.swagger.io
