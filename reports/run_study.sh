#!/usr/bin/env bash
# The reproduction study at CPU scale (2 cores, ~40 minutes). Every number in
# reports/study/report.md comes from these commands; rerun them to reproduce it.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-warehouse/study.duckdb}
gensynth build --max-ops 3 -w "$W"
gensynth sweep reports/study/support.toml -q -w "$W"
gensynth sweep reports/study/density.toml -q -w "$W"
gensynth sweep reports/study/scaling.toml -q -w "$W"
# Search and hybrid synthesizers on the same tasks, parent model = the support_syntactic micro run.
PARENT=$(duckdb -readonly -noheader -list "$W" -c "SELECT run_id FROM finished_runs WHERE view = 'split_support_syntactic' AND size = 'micro' AND max_steps = 400 AND method = 'transformer' ORDER BY finished_at LIMIT 1")
for role in test_id test_ood; do
  gensynth solve -m enumerative --view split_support_syntactic --role "$role" --limit 200 --budget-seconds 10 -w "$W"
  gensynth solve -m sample_verify --run "$PARENT" --view split_support_syntactic --role "$role" --limit 200 --samples 32 -w "$W"
  gensynth solve -m hybrid --run "$PARENT" --view split_support_syntactic --role "$role" --limit 200 --samples 32 --budget-seconds 10 -w "$W"
done
gensynth solve -m enumerative --view tasks_beyond --limit 100 --budget-seconds 10 -w "$W"
gensynth solve -m hybrid --run "$PARENT" --view tasks_beyond --limit 100 --samples 32 --budget-seconds 10 -w "$W"
gensynth proximity -w "$W"
gensynth report --out reports/study --split support_syntactic -w "$W"
