#!/usr/bin/env bash
# `lepton fit` on every table of a directory (the shared data's tabular/ by default), each
# with several seeds at the default budget, one run after another (run it on an otherwise idle
# machine); then one row per table and seed, and the medians over seeds. The target column is
# `target`; the task is what `lepton fit` infers.
#
#   bash benches/fit_tables.sh [OUT.jsonl]
#   TABLES=../shared/data/tabular SEEDS="42 1 2" BUDGET=60 bash benches/fit_tables.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/fit_tables.jsonl}
tables=${TABLES:-../shared/data/tabular}
seeds=${SEEDS:-42 1 2}
budget=${BUDGET:-60}
cargo build --release --bin lepton
bin=${CARGO_TARGET_DIR:-target}/release/lepton
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"
: >"$out"
for csv in "$tables"/*.csv; do
    for seed in $seeds; do
        name=$(basename "$csv" .csv)
        echo "== $name, seed $seed" >&2
        started=$(date +%s.%N)
        "$bin" fit "$csv" --target target --seed "$seed" --budget-seconds "$budget" \
            --artifact "$work/$name-$seed" --json | tail -n 1 |
            jq -c --arg table "$name" --arg started "$started" \
                '. + {table: $table, process_seconds: (now - ($started | tonumber))}' >>"$out"
    done
done
echo
echo "| table | task | seed | test score | model | trials | wall s (process s) |"
echo "|---|---|---|---|---|---|---|"
jq -r '[.table, .task, .seed,
        (if .task == "classification" then "accuracy \(.test_accuracy * 10000 | round / 10000)"
         else "R² \(.test_r2 * 10000 | round / 10000)" end),
        .model, .trials,
        "\(.wall_seconds * 10 | round / 10) (\(.process_seconds * 10 | round / 10))"]
       | "| " + join(" | ") + " |"' "$out"
echo
echo "| table | median test score | median wall s |"
echo "|---|---|---|"
jq -rs 'group_by(.table)[] | {t: .[0].table,
        s: ([.[] | (.test_accuracy // .test_r2)] | sort | .[length / 2 | floor]),
        w: ([.[] | .wall_seconds] | sort | .[length / 2 | floor])}
        | "| \(.t) | \(.s * 10000 | round / 10000) | \(.w * 10 | round / 10) |"' "$out"
