#!/usr/bin/env bash
# Lepton vs pandas + scikit-learn on the same generated CSV, in one run.
#   bash benches/compare_preprocess.sh [ROWS]     (needs: pip install pandas scikit-learn)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
data="${TMPDIR:-/tmp}/lepton_mixed_${rows}.csv"
[ -f "$data" ] || python3 benches/gen_mixed_csv.py "$data" "$rows"
ls -l "$data"
LEPTON_BENCH_CSV="$data" cargo bench --bench preprocess -- --warm-up-time 1 --measurement-time 20 \
    2>&1 | grep -E "^mixed_csv|time:"
python3 benches/preprocess_pandas.py "$data" 5
