"""The import rules of the layout: the core package (mpt_core) imports nothing else of the project;
prompts_store imports only the core and needs only torch + safetensors; training and service never
import each other (in either direction, not even inside a function); only the `mpt` CLI (mpt_cli)
imports both, and it loads no torch until a command runs."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> the top-level packages of this project it must never import
PROJECT = {"mpt_core", "prompts_store", "training", "service", "mpt_cli", "mpt_client", "lab", "bench", "docsite"}
FORBIDDEN = {
    "mpt_core": PROJECT - {"mpt_core"},
    "prompts_store": PROJECT - {"mpt_core", "prompts_store"},
    "training": {"service", "mpt_cli", "mpt_client", "lab", "bench", "docsite"},
    "service": {"training", "mpt_cli", "mpt_client", "lab", "bench", "docsite"},
    "mpt_client": {"training", "service", "mpt_cli", "lab", "bench", "docsite"},  # prompts_store: only to push
}


def _modules_after(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return {m.split(".")[0] for m in out.split()}


def _imported_packages(path: Path) -> set[str]:
    """Top-level names of every import statement in a file, including those inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_file_imports_a_forbidden_package(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    bad = {str(f.relative_to(ROOT)): sorted(_imported_packages(f) & FORBIDDEN[package]) for f in files}
    assert not {f: names for f, names in bad.items() if names}


def test_prompts_store_needs_only_torch_and_safetensors():
    mods = _modules_after("import prompts_store, mpt_core.prompted, mpt_core.backbone")
    assert not mods & {"training", "service", "transformers", "fastapi"}


def _all_modules(package: str) -> str:
    return (
        f"import importlib, pkgutil, {package}; "
        f"[importlib.import_module(m.name) for m in pkgutil.walk_packages({package}.__path__, '{package}.') "
        "if not m.name.endswith('__main__')]"
    )


def test_service_never_imports_training():
    assert "training" not in _modules_after(_all_modules("service") + "; import service.__main__")


def test_training_never_imports_service():
    mods = _modules_after(_all_modules("training"))
    assert "service" not in mods and "fastapi" not in mods


def test_the_cli_builds_its_parser_without_torch():
    # `mpt serve` hands over to service.__main__, which sets OMP_WAIT_POLICY before torch loads
    mods = _modules_after("import mpt_cli.main; mpt_cli.main.build_parser()")
    assert "torch" not in mods and "training" in mods
