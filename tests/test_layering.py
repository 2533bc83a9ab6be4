"""The import rules of the layout: prompts_store needs only torch + safetensors; service never
imports training."""

import subprocess
import sys

import pytest


def _modules_after(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {m.split(".")[0] for m in out.split()}


def test_prompts_store_needs_only_torch_and_safetensors():
    mods = _modules_after("import prompts_store, prompts_store.prompted")
    assert not mods & {"training", "service", "transformers", "fastapi"}


@pytest.mark.parametrize("stmt", ["import service.app", "import service.__main__"])
def test_service_never_imports_training(stmt):
    assert "training" not in _modules_after(stmt)


def test_the_cli_module_loads_without_torch():
    # `mpt serve` hands over to service.__main__, which sets OMP_WAIT_POLICY before torch loads
    assert "torch" not in _modules_after("import training.cli")
