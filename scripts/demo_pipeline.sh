#!/usr/bin/env bash
# The whole MPT pipeline on a small generated example, end to end on a CPU in about a minute:
#   tiny backbone -> teachers (vanilla PT) -> distillation into P* + factors -> target adaptation
#   (factors: l + d parameters) -> evaluation -> predictions.
# Usage: scripts/demo_pipeline.sh [WORKDIR]   (default build/demo-pipeline; re-runs start fresh)
set -euo pipefail
cd "$(dirname "$0")/.."
mpt=${MPT:-.venv/bin/mpt}
work=${1:-build/demo-pipeline}
rm -rf "$work" && mkdir -p "$work"
model="$work/backbone"

echo "== 1/6 tiny backbone (random T5, d_model=128) + tokenizer -> $model"
$mpt backbone tiny --out "$model" --d-model 128 --layers 2 >/dev/null
echo "== 2/6 generated tasks -> $work/data"
$mpt data toy --out "$work/data" >/dev/null
src=(--task "polarity=$work/data/polarity" --task "animal=$work/data/animal" --task "size=$work/data/size")
common=(--model "$model" --batch-size 16 --eval-max-examples 50)

echo "== 3/6 teachers: vanilla prompt tuning per source task"
$mpt train teachers "${common[@]}" "${src[@]}" --out "$work/teachers" --prompt-length 50 --steps 300 >"$work/teachers.json"
echo "== 4/6 distillation into a shared prompt P* + rank-one factors"
$mpt train distill "${common[@]}" "${src[@]}" --teachers "$work/teachers" --store "$work/store" --family demo \
  --out "$work/distill" --steps 300 --lr 0.1 >"$work/distill.json"
echo "== 5/6 target adaptation: a new task in the family, only u and v train"
$mpt train adapt "${common[@]}" --store "$work/store" --family demo --task "temperature=$work/data/temperature" \
  --mode factors --out "$work/adapt" --steps 300 --lr 0.1 >"$work/adapt.json"
echo "== 6/6 evaluation and predictions"
$mpt eval --model "$model" --store "$work/store" --task "temperature=$work/data/temperature" --task "size=$work/data/size"
$mpt predict --model "$model" --store "$work/store" --task temperature --json "hot or cold : fire new" "hot or cold : snow old"
echo "store: $work/store  (families: $(ls "$work/store/families" | tr '\n' ' '); tasks: $(ls "$work/store/tasks" | sed 's/.safetensors//' | tr '\n' ' '))"
