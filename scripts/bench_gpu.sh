#!/usr/bin/env bash
# The GPU speed run of issue 11 in one command (make bench-gpu), within 8 minutes on an H100/H200:
# the serving engine (Engine.run, fast path) vs PEFT on one T5-base-shaped random model (bf16, l = 100,
# 128-token inputs, batch 256): label scoring, greedy generation of 4 tokens, batch-1 scoring p50,
# 1,000 resident tasks mixed in every batch vs one task, then the real server (python -m service) over
# HTTP at concurrency 256 vs the engine's own throughput. Outputs are checked in the same run.
#
#   scripts/bench_gpu.sh                  # on the GPU machine: $OUT/speed-cuda.json (+ -server.log)
#   PYTHON=.venv/bin/python OUT=/tmp/b scripts/bench_gpu.sh --device cpu --quick --shape quick-gpu \
#       --compile default --compile-min-batch 4       # the same script, a tiny dry run on a CPU
#
# Needs torch, transformers, peft, tokenizers, safetensors, numpy; no network. The server's web stack
# (scripts/gpu_wheels.txt) is installed from .whl/ (scripts/fetch_gpu_wheels.sh) into a throw-away
# --target when this python lacks it. Soft deadline 380 s for the benchmark (every phase capped,
# phases that would not fit are skipped), hard stop at 450 s; the JSON is rewritten after every phase.
# Environment: OUT (default bench/results), PYTHON (default python3), BENCH_SITE (default /tmp/site),
# BENCH_DEADLINE (380), BENCH_TIMEOUT (450).
set -euo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
OUT="${OUT:-bench/results}"
PY="${PYTHON:-python3}"
SITE="${BENCH_SITE:-/tmp/site}"
log() { echo "[$(date +%T) +$(($(date +%s) - START))s] bench_gpu: $*"; }
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1

# 1. the server's web stack, when missing, from the wheels carried in .whl/
shopt -s nullglob
wheels=(.whl/*.whl)
if [ ${#wheels[@]} -gt 0 ] && ! "$PY" -c "import fastapi, uvicorn, pydantic_settings, httptools, uvloop" 2>/dev/null; then
  log "installing ${#wheels[@]} wheels from .whl/ into $SITE"
  if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "${wheels[@]}"; then
    log "pip could not install them; unpacking the wheels into $SITE instead"
    "$PY" - "$SITE" "${wheels[@]}" <<'EOF'
import sys, zipfile
for wheel in sys.argv[2:]:
    zipfile.ZipFile(wheel).extractall(sys.argv[1])
EOF
  fi
  export PYTHONPATH="$SITE:$PYTHONPATH"
fi
if "$PY" -c "import service.http.app, uvicorn" 2>/dev/null; then
  log "the server imports: HTTP phase possible"
else
  log "WARNING: the server does not import (the HTTP phase will fail and be recorded):"
  "$PY" -c "import service.http.app, uvicorn" 2>&1 | tail -3 || true
fi

# 2. what runs it
log "$("$PY" -c 'import sys, torch, transformers, peft
print("python", sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__,
      "peft", peft.__version__, "cuda", torch.cuda.is_available())')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,compute_mode --format=csv,noheader || true

# 3. the benchmark: a soft deadline it plans its phases by, a hard stop (SIGINT: the JSON of every
# finished phase stays, the server is stopped, the table is printed) in case something hangs
spent=$(($(date +%s) - START))
deadline=$((${BENCH_DEADLINE:-380} - spent))
hard=$((${BENCH_TIMEOUT:-450} - spent))
log "running bench.speed (deadline ${deadline}s, hard stop ${hard}s)"
status=0
timeout --signal=INT --kill-after=15 "$hard" "$PY" -m bench.speed --device cuda --http --out "$OUT" --deadline "$deadline" "$@" \
  || status=$?
log "done (exit $status) in $(($(date +%s) - START))s; results in $OUT"
exit $status
