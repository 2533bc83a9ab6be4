#!/usr/bin/env bash
# One install for every place that needs one: `make`, CI and the Dockerfile.
#   scripts/install.sh VENV EXTRAS     e.g.  scripts/install.sh .venv serve,test
# Creates VENV if needed, installs the CPU torch pinned in constraints-cpu.txt, then this
# project with EXTRAS (editable; MPT_EDITABLE=0 for a regular install, as in the container).
# Set MPT_TORCH_SPEC to install another torch instead (e.g. a CUDA build on a GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
extras=${2:-serve,test}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
if [ -n "${MPT_TORCH_SPEC:-}" ]; then
  "$py" -m pip install --quiet --disable-pip-version-check "$MPT_TORCH_SPEC"
  constraint=()
else
  "$py" -m pip install --quiet --disable-pip-version-check -c constraints-cpu.txt torch
  constraint=(-c constraints-cpu.txt)
fi
editable=(-e)
[ "${MPT_EDITABLE:-1}" = "0" ] && editable=()
"$py" -m pip install --quiet --disable-pip-version-check "${constraint[@]}" "${editable[@]}" ".[${extras}]"
"$py" -c "import torch, transformers; print(f'installed: torch {torch.__version__}, transformers {transformers.__version__}')"
