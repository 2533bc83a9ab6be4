#!/usr/bin/env bash
# Download the wheels of scripts/gpu_wheels.txt into .whl/ (CPython 3.12, manylinux x86_64; pure
# Python ones as py3-none-any), for scripts/bench_gpu.sh on a GPU machine without network.
#
#   scripts/fetch_gpu_wheels.sh            # needs PyPI; PYTHON defaults to the project venv's python
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-/work/main/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
mkdir -p .whl
grep -v '^\s*#' scripts/gpu_wheels.txt | grep -v '^\s*$' | while read -r req; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$req"
done
# one version of each: a wheel not listed (an older download) would shadow or clash
listed=$(grep -v '^\s*#' scripts/gpu_wheels.txt | grep -v '^\s*$' | sed 's/==/-/; s/[-_.]/_/g' | tr 'A-Z' 'a-z')
for f in .whl/*.whl; do
  key=$(basename "$f" | cut -d- -f1-2 | sed 's/[-_.]/_/g' | tr 'A-Z' 'a-z')
  grep -qx "$key" <<<"$listed" || { echo "removing $f (not in scripts/gpu_wheels.txt)"; rm -f "$f"; }
done
ls -1 .whl
