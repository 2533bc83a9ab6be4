#!/usr/bin/env bash
# The GPU speed benchmark in one command: the engine's fast path vs PEFT on one T5-base-shaped
# random model (bf16, l = 100, 128-token inputs, batch 256), outputs checked, medians reported.
# Installs nothing and needs no network (torch, transformers, peft must be importable).
#
#   scripts/bench_gpu.sh                                  # on the GPU machine: writes $OUT/speed-cuda.json
#   scripts/bench_gpu.sh --device cpu --quick --static-shapes on --compile default --compile-min-batch 1
#                                                         # the same script, a tiny dry run on a CPU
# Environment: OUT (default bench/results), PYTHON (default python3), BENCH_TIMEOUT (default 470 s).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results}"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
mkdir -p "$OUT"
echo "[$(date +%T)] bench_gpu: $("$PY" -c 'import sys, torch, transformers, peft
print("python", sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__,
      "peft", peft.__version__, "cuda", torch.cuda.is_available())')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
# SIGINT at the deadline: the JSON written after every finished phase stays
exec timeout --signal=INT --kill-after=20 "${BENCH_TIMEOUT:-470}" "$PY" -m bench.speed --device cuda --out "$OUT" "$@"
