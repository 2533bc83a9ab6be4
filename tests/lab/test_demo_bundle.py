"""The committed demo bundle (demo/, built by `make demo-bundle`) is what `make serve` serves:
it stays under the size limit, the server answers its recorded held-out examples exactly as the
bundle build predicted them, and every curl example of the README and the quick start gets the answer
shown there."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import pytest

from ..service.serving import serve

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"
MAX_BYTES = 20_000_000


PAGES = ("README.md", "docs/quickstart.md")  # the pages that show the demo's curl calls


def readme_examples(page: str = "README.md") -> list[tuple[str, str, str]]:
    """(task, input, expected output) of each curl call of a page followed by its `# -> answer` line."""
    text = (ROOT / page).read_text()
    pattern = re.compile(r"curl -s '[^']*/predict\?task=([\w.-]+)' -d '(\{.*?\})'[^\n]*\n# -> (.+)")
    return [(task, json.loads(body)["inputs"], answer.strip()) for task, body, answer in pattern.findall(text)]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    store = tmp_path_factory.mktemp("demo") / "store"
    shutil.copytree(DEMO / "store", store)  # the server may write (store version, cleanup); never into the repo
    with serve(DEMO / "backbone", str(store)) as (url, _):  # a directory store
        yield url


def test_bundle_is_complete_and_small():
    for part in (
        "backbone/config.json",
        "backbone/model.safetensors",
        "backbone/tokenizer.json",
        "store",
        "tasks.json",
        "bundle.json",
    ):
        assert (DEMO / part).exists(), f"demo/{part} is missing: run `make demo-bundle`"
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size <= MAX_BYTES, f"demo bundle is {size / 1e6:.1f} MB"
    tasks = json.loads((DEMO / "tasks.json").read_text())
    assert len(tasks) >= 3
    for name, t in tasks.items():
        assert t["examples"] and 0 <= t["heldout_exact_match"] <= 1, name


def test_server_reproduces_the_bundles_predictions(demo_server):
    tasks = json.loads((DEMO / "tasks.json").read_text())
    served = {t["name"] for t in httpx.get(f"{demo_server}/tasks").json()["tasks"]}
    assert set(tasks) <= served
    for name, t in tasks.items():
        inputs = [e["input"] for e in t["examples"]]
        r = httpx.post(f"{demo_server}/predict", params={"task": name}, json={"inputs": inputs, "max_new_tokens": 12})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"] == [e["predicted"] for e in t["examples"]], name


@pytest.mark.parametrize("page", PAGES)
def test_readme_curl_examples_answer_as_shown(demo_server, page):
    examples = readme_examples(page)
    tasks = json.loads((DEMO / "tasks.json").read_text())
    assert {task for task, _, _ in examples} == set(tasks), f"{page} shows a curl call for each demo task"
    for task, text, answer in examples:
        r = httpx.post(f"{demo_server}/predict", params={"task": task}, json={"inputs": text})
        assert r.status_code == 200, r.text
        assert json.dumps(r.json(), separators=(",", ":")) == answer, (task, text)
