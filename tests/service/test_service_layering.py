"""Import rules inside the service: the request queue, its rows and the metrics are plain
Python, so none of them drags in a model library (the engine is what needs torch, the backbone
loader transformers)."""

import subprocess
import sys

import pytest


def _modules_after(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {m.split(".")[0] for m in out.split()}


@pytest.mark.parametrize("module", ["service.inference.batcher", "service.runtime.metrics", "service.inference.rows"])
def test_batcher_and_metrics_need_no_model_library(module):
    assert not _modules_after(f"import {module}") & {"transformers", "torch", "tokenizers"}
