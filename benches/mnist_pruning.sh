#!/usr/bin/env bash
# Multi-fidelity on real training: the MNIST MLP search of `examples/mnist_pruning.rs` run by
# each method for several seeds, one after another (run it on an otherwise idle machine), then
# a table per run and one of medians over seeds: training budget (epochs summed over trials),
# wall time (one worker: all of it is training and validation), time until a trial first
# reached 98 % validation accuracy, best validation accuracy, each against random search
# without pruning on the same seed.
#
#   bash benches/mnist_pruning.sh [OUT.jsonl]
#   METHODS="random hyperband" SEEDS="0 1" bash benches/mnist_pruning.sh
#   TRIALS=100 EPOCHS=9 REPORTS=3 bash benches/mnist_pruning.sh   # the example's flags
#
# REPORTS (validation reports an epoch) applies to the pruning methods; random search, which
# prunes nothing, validates once an epoch (RANDOM_REPORTS), as it would without this bench:
# more reports would only add validation time to the baseline.
#
# Needs MNIST (LEPTON_DATA_DIR or ../shared/data, see lepton_data::datasets::mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/mnist_pruning.jsonl}
methods=${METHODS:-random hyperband bohb hyperband-resume bohb-resume}
seeds=${SEEDS:-0 1 2}
flags=(--trials "${TRIALS:-30}" --epochs "${EPOCHS:-12}")
cargo build --release --example mnist_pruning
bin=${CARGO_TARGET_DIR:-target}/release/examples/mnist_pruning
mkdir -p "$(dirname "$out")"
: >"$out"
for seed in $seeds; do
    for method in $methods; do
        echo "== $method, seed $seed" >&2
        reports=${REPORTS:-1}
        [ "$method" = random ] && reports=${RANDOM_REPORTS:-1}
        "$bin" --method "$method" --seed "$seed" "${flags[@]}" --reports-per-epoch "$reports" \
            --json | tail -n 1 | tee -a "$out"
    done
done
python3 - "$out" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["method"], []).append(r)
med = lambda xs: statistics.median(xs) if xs else float("nan")
base = {r["seed"]: r for r in by.get("random", [])}
test = lambda r: float("nan") if r.get("best_test_accuracy") is None else r["best_test_accuracy"]
print("| method | seed | reports/epoch | trials | pruned | epochs | wall (s) | time to target (s) | best valid | its test |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    t = r["seconds_to_target"]
    print(f"| {r['method']} | {r['seed']} | {r['reports_per_epoch']} | {r['trials']} | {r['pruned']} | {r['epochs']:.1f} | {r['wall_seconds']:.0f} | {'never' if t is None else f'{t:.0f}'} | {r['best_valid_accuracy']:.4f} | {test(r):.4f} |")
print()
# Ratios to random search on the same seed (same split, same first configurations), then the
# median over seeds. A run that never reached the target counts its whole wall time.
def reach(r):
    return r["seconds_to_target"] if r["seconds_to_target"] is not None else r["wall_seconds"]
print(f"| method | seeds | epochs | wall (s) | wall: random / method | epochs: random / method | time to {rows[0]['target']:.0%}: random / method | best valid - random's | its test - random's |")
print("|---|---|---|---|---|---|---|---|---|")
for m, rs in by.items():
    paired = [r for r in rs if r["seed"] in base]
    ratio = lambda f: med([f(base[r["seed"]]) / f(r) for r in paired])
    diff = med([r["best_valid_accuracy"] - base[r["seed"]]["best_valid_accuracy"] for r in paired])
    test_diff = med([test(r) - test(base[r["seed"]]) for r in paired])
    print(f"| {m} | {len(rs)} | {med([r['epochs'] for r in rs]):.1f} | {med([r['wall_seconds'] for r in rs]):.0f} | {ratio(lambda r: r['wall_seconds']):.2f}x | {ratio(lambda r: r['epochs']):.2f}x | {ratio(reach):.2f}x | {diff:+.4f} | {test_diff:+.4f} |")
EOF
