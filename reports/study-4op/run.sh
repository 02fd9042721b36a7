#!/usr/bin/env bash
# The reproduction study at paper scale: the full default universe (max-ops 4, 11.4M
# programs), three seeds per density and support cell, a scaling block over >1,000x
# training FLOPs, proximity, and search/hybrid on the same test roles and beyond the
# universe. One command, resumable: rerun it after a kill and it continues (sweeps skip
# finished runs and resume killed ones; every other step leaves a marker in $OUT/.done).
#
#   reports/study-4op/run.sh            # W=warehouse/study4.duckdb, JOBS=2
#
# Compute plan on the 2-core CPU machine (1 torch thread per run, two runs at a time; the
# minutes each block took are in README.md here):
#   build                          ~2 min (100 s measured)
#   support  3 splits x 3 seeds    9 runs  x ~4 CPU-min (lines micro, 1,200 steps, batch 256)
#   density  4 splits x 3 seeds   12 runs  x ~4 CPU-min
#   scaling  support_syntactic x 5 sizes x 3 budgets x 2 seeds = 30 runs at batch 64,
#            + nano/micro/tiny x 1,000 steps x batch 256 x 2 seeds (scaling_long.toml)
#            (SCALING_DIVERSE=1 adds the same grid on density_diverse: 30 more runs)
#   search   3 methods x 2 roles x 200 tasks (2 s each); beyond 5..8 ops x 50 tasks x 3 methods (3 s each)
#   proximity, report, export      ~10 min
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${W:-warehouse/study4.duckdb}
OUT=${OUT:-reports/study-4op}
JOBS=${JOBS:-2}
DONE="$OUT/.done"
mkdir -p "$DONE" "$(dirname "$W")"
export GENSYNTH_WAREHOUSE="$W"

step() {  # step NAME COMMAND...: run once; a rerun skips it
  local name=$1; shift
  if [[ -e "$DONE/$name" ]]; then echo "== $name: done before, skipped"; return; fi
  echo "== $name ($(date -u +%H:%M:%S))"
  local t0=$SECONDS
  "$@"
  echo "$((SECONDS - t0))" > "$DONE/$name"
  echo "== $name: $((SECONDS - t0)) s"
}

# Blocks whose cost the plan quotes: the sweep's own wall clock goes to $DONE too.
sweep() {  # sweep FILE: skips finished runs itself, so it always runs
  local t0=$SECONDS
  echo "== sweep $1 ($(date -u +%H:%M:%S))"
  gensynth sweep "$OUT/$1" -j "$JOBS" -q -w "$W"
  echo "$((SECONDS - t0))" >> "$DONE/sweep-${1%.toml}.seconds"
}

[[ -f "$W" ]] || step build gensynth build --max-ops 4 -w "$W"
sweep support.toml
sweep density.toml
sweep scaling_support.toml
sweep scaling_long.toml
[[ ${SCALING_DIVERSE:-0} == 1 ]] && sweep scaling_diverse.toml

# The parent model of the neural synthesizers: the support_syntactic micro run of seed 0.
PARENT=$(duckdb -readonly -noheader -list "$W" -c "SELECT run_id FROM finished_runs WHERE view = 'split_support_syntactic' AND size = 'micro' AND seed = 0 AND max_steps = 1200 AND method = 'transformer' ORDER BY finished_at LIMIT 1")
[[ -n "$PARENT" ]] || { echo "no support_syntactic micro run of seed 0 to use as the parent model" >&2; exit 1; }

# Search and hybrid on the same test roles (200 tasks each, 2 s per task).
for role in test_id test_ood; do
  step "enumerative-$role" gensynth solve -m enumerative --view split_support_syntactic --role "$role" --limit 200 --budget-seconds 2 -q -w "$W"
  step "sample_verify-$role" gensynth solve -m sample_verify --run "$PARENT" --view split_support_syntactic --role "$role" --limit 200 --samples 64 -q -w "$W"
  step "hybrid-$role" gensynth solve -m hybrid --run "$PARENT" --view split_support_syntactic --role "$role" --limit 200 --samples 64 --budget-seconds 2 -q -w "$W"
done

# Beyond the universe: 50 drawn tasks of exactly 5, 6, 7 and 8 operators. tasks_beyond is
# redrawn per size, so each draw is kept as beyond_ops<N>.parquet and each run's size in
# beyond_runs.csv (run_id, ops) for the claims SQL.
beyond_block() {
  local ops=$1
  gensynth beyond --ops "$ops" --tasks 50 --seed "$ops" -w "$W"
  duckdb -readonly "$W" -c "COPY (SELECT $ops AS ops, * FROM tasks_beyond) TO '$OUT/beyond_ops$ops.parquet' (FORMAT parquet)"
  for m in enumerative sample_verify hybrid; do
    local extra=()
    [[ $m != enumerative ]] && extra=(--run "$PARENT" --samples 64)
    gensynth solve -m "$m" --view tasks_beyond --limit 50 --budget-seconds 3 "${extra[@]}" -q -w "$W"
    duckdb -readonly -noheader -csv "$W" -c "SELECT run_id, $ops FROM runs WHERE json_extract_string(config, '\$.method') = '$m' AND view = 'tasks_beyond' ORDER BY started_at DESC LIMIT 1" >> "$OUT/beyond_runs.csv"
  done
}
for ops in 5 6 7 8; do step "beyond-$ops" beyond_block "$ops"; done

step proximity gensynth proximity -w "$W"
step report gensynth report --out "$OUT" --split support_syntactic -w "$W"
rm -rf "$OUT/results"
gensynth runs export --out "$OUT/results" -w "$W"
python reports/study-4op/claims.py --results "$OUT/results" --beyond "$OUT" --write "$OUT/README.md"
