#!/usr/bin/env bash
# The MPT paper's pipeline on real data, one command per stage (see lab/glue/README.md):
#
#   RAW=/data/raw lab/glue/run.sh prepare        # RAW/<dataset>/: save_to_disk dirs or JSONL exports
#   lab/glue/run.sh teachers                     # vanilla prompt tuning, one teacher per source (6)
#   lab/glue/run.sh distill                      # P* + 6 source factors (family "mpt")
#   lab/glue/run.sh adapt-full                   # per target: P* and u, v (the paper's Table 1 setting)
#   lab/glue/run.sh adapt-factors                # per target: u, v only (what the service serves)
#   lab/glue/run.sh adapt-group                  # per benchmark: multitask target adaptation (GLUE, SuperGLUE)
#   lab/glue/run.sh evaluate                     # results/<mode>/results.{json,md}, next to the paper
#   RAW=/data/raw lab/glue/run.sh all            # everything above, in order
#
# Everything lands in $WORK (default build/glue). Paper values: T5-base, prompt length 100, the 6
# sources, the split protocol (seed 42), init of target factors = mean of the source factors.
# From ATTEMPT's prompt-tuning configs (MPT builds on its code): lr 0.3, batch 32, 20 epochs for
# targets, max input 256 (GLUE) / 386 (SuperGLUE). Ours (the paper's appendix was not checked
# here): the step budgets, the 512-token inputs of the QA tasks, --hidden both, lambda 1,
# temperature 2, kappa = all sources, factor lr = lr. Override any of them with the variables below.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODEL=${MODEL:-t5-base}                    # hub id or a local directory with a T5-base
WORK=${WORK:-build/glue}
DATA=${DATA:-$WORK/data}                   # prepared task directories
SRC_STORE=${SRC_STORE:-$WORK/store-src}    # after distill: family mpt (P*) + the 6 source tasks
STORE=${STORE:-$WORK/store}                # the adapted targets of every mode
PY=${PY:-python}
MPT=${MPT:-mpt}
DEVICE=${DEVICE:-auto}
PREPARE=${PREPARE:-all}                    # datasets or groups to prepare (sources targets glue ...)
TARGETS=${TARGETS:-"mnli qqp qnli sst2 stsb mrpc rte cola multirc boolq wic wsc cb nq hotpotqa searchqa newsqa winogrande yelp scitail paws"}
SOURCES="mnli qnli qqp sst2 squad record"
LABEL_STYLE=${LABEL_STYLE:-ids}            # ids: the paper's class-index targets; names: ClassLabel names
SPLIT_SEED=${SPLIT_SEED:-42}               # paper (ATTEMPT's data seed)
DEV_SIZE=${DEV_SIZE:-1000}                 # paper
SEED=${SEED:-0}                            # training seed; the paper reports the mean of 3 seeds
PROMPT_LEN=${PROMPT_LEN:-100}              # paper
BATCH=${BATCH:-32}                         # ATTEMPT config
LR=${LR:-0.3}                              # ATTEMPT config
FACTOR_LR=${FACTOR_LR:-$LR}                # ours
TEACHER_STEPS=${TEACHER_STEPS:-30000}      # ours
DISTILL_STEPS=${DISTILL_STEPS:-30000}      # ours
DISTILL_MAX_INPUT=${DISTILL_MAX_INPUT:-512}  # ours: one length for the 6 sources together
HIDDEN=${HIDDEN:-both}                     # ours
TARGET_EPOCHS=${TARGET_EPOCHS:-20}         # ATTEMPT config
TARGET_MAX_STEPS=${TARGET_MAX_STEPS:-30000}  # ours: a cap on 20 epochs of the large sets

log() { echo "== $*" >&2; }
need_data() { [[ -f $DATA/manifest.json ]] || { echo "run.sh: no $DATA/manifest.json; run the prepare stage first" >&2; exit 2; }; }

# manifest value of a prepared dataset: field DATASET KEY
field() { $PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["datasets"][sys.argv[2]][sys.argv[3]])' \
  "$DATA/manifest.json" "$1" "$2"; }

# steps for TARGET_EPOCHS epochs over N training rows, capped: steps N
steps() { local s=$(( (TARGET_EPOCHS * $1 + BATCH - 1) / BATCH )); (( s > TARGET_MAX_STEPS )) && s=$TARGET_MAX_STEPS; echo "$s"; }
train_rows() { wc -l <"$DATA/$1/train.jsonl" | tr -d ' '; }

set_flags() {  # FLAGS = the flags every training command shares: set_flags MAX_INPUT_TOKENS
  FLAGS=(--model "$MODEL" --device "$DEVICE" --batch-size "$BATCH" --lr "$LR" --factor-lr "$FACTOR_LR"
         --seed "$SEED" --max-input-tokens "$1")
}

fresh_scratch() {  # a copy of the source store, so that --init mean averages the 6 sources only
  [[ -d $SRC_STORE/families/mpt ]] || { echo "run.sh: no family mpt in $SRC_STORE; run the distill stage first" >&2; exit 2; }
  rm -rf "$WORK/scratch" && cp -r "$SRC_STORE" "$WORK/scratch"
}

stage_prepare() {
  [[ -n ${RAW:-} ]] || { echo "run.sh prepare: set RAW to the directory holding RAW/<dataset>/" >&2; exit 2; }
  # shellcheck disable=SC2086
  $PY -m lab.glue.prepare --raw "$RAW" --out "$DATA" --seed "$SPLIT_SEED" --label-style "$LABEL_STYLE" \
    --dev-size "$DEV_SIZE" $PREPARE
}

stage_teachers() {
  need_data
  for t in $SOURCES; do
    log "teacher $t"
    set_flags "$(field "$t" max_input_tokens)"
    $MPT train teachers "${FLAGS[@]}" --task "$t=$DATA/$t" --out "$WORK/teachers" \
      --prompt-length "$PROMPT_LEN" --steps "$TEACHER_STEPS" >"$WORK/logs/teacher-$t.json"
  done
}

stage_distill() {
  need_data
  local tasks=()
  for t in $SOURCES; do tasks+=(--task "$t=$DATA/$t"); done
  log "distill the 6 teachers into family mpt -> $SRC_STORE"
  set_flags "$DISTILL_MAX_INPUT"
  $MPT train distill "${FLAGS[@]}" "${tasks[@]}" \
    --teachers "$WORK/teachers" --store "$SRC_STORE" --family mpt --out "$WORK/runs/distill" \
    --steps "$DISTILL_STEPS" --hidden "$HIDDEN" --overwrite >"$WORK/logs/distill.json"
}

adapt_one() {  # adapt_one MODE TARGET: train in a scratch store, then gather into $STORE as TARGET-MODE
  local mode=$1 t=$2 name="$2-$1" n
  n=$(steps "$(train_rows "$t")")
  fresh_scratch
  log "adapt $mode $t ($n steps)"
  set_flags "$(field "$t" max_input_tokens)"
  $MPT train adapt "${FLAGS[@]}" --store "$WORK/scratch" --family mpt --task "$name=$DATA/$t" --mode "$mode" \
    --init mean --steps "$n" --out "$WORK/runs/$name" --overwrite >"$WORK/logs/adapt-$name.json"
  $PY -m lab.glue.promote --from "$WORK/scratch" --to "$STORE" --overwrite "$name"
}

stage_adapt() {  # stage_adapt MODE
  need_data
  for t in $TARGETS; do adapt_one "$1" "$t"; done
}

stage_adapt_group() {  # one multitask adaptation per benchmark: new family <bench>-mt, tasks <t>-mt
  need_data
  local bench names tasks rows max_in t
  for bench in glue superglue; do
    names=$($PY -c 'import sys; from lab.glue.registry import BENCHMARKS; print(" ".join(BENCHMARKS[sys.argv[1]]))' "$bench")
    tasks=() rows=0 max_in=0
    for t in $names; do
      tasks+=(--task "$t-mt=$DATA/$t")
      rows=$(( rows + $(train_rows "$t") ))
      (( $(field "$t" max_input_tokens) > max_in )) && max_in=$(field "$t" max_input_tokens)
    done
    fresh_scratch
    log "adapt group $bench ($(steps "$rows") steps)"
    set_flags "$max_in"
    $MPT train adapt "${FLAGS[@]}" --store "$WORK/scratch" --family mpt \
      "${tasks[@]}" --mode group --new-family "$bench-mt" --init mean --steps "$(steps "$rows")" \
      --out "$WORK/runs/$bench-mt" --overwrite >"$WORK/logs/adapt-$bench-mt.json"
    # shellcheck disable=SC2046
    $PY -m lab.glue.promote --from "$WORK/scratch" --to "$STORE" --overwrite $(for t in $names; do echo "$t-mt"; done)
  done
}

stage_evaluate() {  # every mode whose tasks are in the store; the paper's numbers next to ours
  need_data
  local mode ref datasets t
  for mode in full factors mt; do
    ref=mpt datasets=""
    [[ $mode == mt ]] && ref=mpt-mt
    for t in $TARGETS; do [[ -f $STORE/tasks/$t-$mode.safetensors ]] && datasets+="${datasets:+,}$t"; done
    [[ -n $datasets ]] || { log "evaluate $mode: no $mode tasks in $STORE, skipped"; continue; }
    log "evaluate $mode: $datasets"
    $PY -m lab.glue.evaluate --model "$MODEL" --device "$DEVICE" --store "$STORE" --data "$DATA" \
      --datasets "$datasets" --task-suffix="-$mode" --reference "$ref" --out "$WORK/results/$mode"
  done
}

mkdir -p "$WORK/logs"
[[ $# -gt 0 ]] || { sed -n '2,19p' "$0"; exit 2; }
for stage in "$@"; do
  case $stage in
    prepare) stage_prepare ;;
    teachers) stage_teachers ;;
    distill) stage_distill ;;
    adapt-full) stage_adapt full ;;
    adapt-factors) stage_adapt factors ;;
    adapt-group) stage_adapt_group ;;
    evaluate) stage_evaluate ;;
    all) stage_prepare; stage_teachers; stage_distill; stage_adapt full; stage_adapt factors; stage_adapt_group
         stage_evaluate ;;
    *) echo "run.sh: unknown stage $stage (prepare teachers distill adapt-full adapt-factors adapt-group evaluate all)" >&2
       exit 2 ;;
  esac
done
