"""The docs' training example (demo/jobs/rte.json, the body of their `POST /tasks/NAME/train`) is
what bench.jobs.setup generates from the lab over the demo world, and a family the demo store holds
no task of; the GPU benchmark script runs without the server's packages."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.jobs.setup import DEMO_STORE, EXAMPLE, ROOT, TASK_FAMILY, example_body
from prompts_store import open_store


def test_the_committed_example_is_the_generated_one_for_a_new_family():
    assert json.loads(EXAMPLE.read_text()) == example_body()
    body = example_body()
    assert len(body["examples"]) == 16 and body["mode"] == "factors" and body["steps"] == 100
    assert {e["target"] for e in body["examples"]} == {"entailment", "not_entailment"}
    with open_store(DEMO_STORE, create=False) as store:
        assert TASK_FAMILY not in store.list_tasks()
    for page in ("docs/jobs.md", "docs/quickstart.md"):
        assert f"-d @{EXAMPLE.relative_to(ROOT)}" in (ROOT / page).read_text(), page


def test_the_gpu_benchmark_needs_neither_fastapi_nor_httpx():
    code = (
        "import sys, runpy; sys.argv = ['train_job_gpu.py', '--help']\n"
        "try:\n    runpy.run_path('bench/jobs/train_job_gpu.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('fastapi', 'httpx', 'uvicorn', 'service', 'psycopg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
