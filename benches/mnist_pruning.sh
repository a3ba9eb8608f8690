#!/usr/bin/env bash
# Multi-fidelity on real training: the MNIST MLP search of `examples/mnist_pruning.rs` run by
# each method for several seeds, one after another (run it on an otherwise idle machine), then
# a table of medians: training budget (epochs summed over trials), wall time, time until a
# trial first reached 98 % validation accuracy, best validation accuracy, and the ratios to
# random search without pruning.
#
#   bash benches/mnist_pruning.sh [OUT.jsonl]
#   METHODS="random hyperband" SEEDS="0 1" bash benches/mnist_pruning.sh
#
# Needs MNIST (LEPTON_DATA_DIR or ../shared/data, see lepton_data::datasets::mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/mnist_pruning.jsonl}
methods=${METHODS:-random hyperband bohb hyperband-resume bohb-resume}
seeds=${SEEDS:-0 1 2}
cargo build --release --example mnist_pruning
bin=${CARGO_TARGET_DIR:-target}/release/examples/mnist_pruning
mkdir -p "$(dirname "$out")"
: >"$out"
for seed in $seeds; do
    for method in $methods; do
        echo "== $method, seed $seed" >&2
        "$bin" --method "$method" --seed "$seed" --json | tail -n 1 | tee -a "$out"
    done
done
python3 - "$out" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["method"], []).append(r)
med = lambda xs: statistics.median(xs) if xs else float("nan")
def to_target(rs):
    # A run that never reached the target counts as its whole wall time (a lower bound).
    return med([r["seconds_to_target"] if r["seconds_to_target"] is not None else r["wall_seconds"] for r in rs])
base = by.get("random")
print("| method | seed | trials | pruned | epochs | wall (s) | time to target (s) | best valid |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    t = r["seconds_to_target"]
    print(f"| {r['method']} | {r['seed']} | {r['trials']} | {r['pruned']} | {r['epochs']} | {r['wall_seconds']:.0f} | {'never' if t is None else f'{t:.0f}'} | {r['best_valid_accuracy']:.4f} |")
print()
print(f"| method | seeds | trials | epochs | wall (s) | time to {rows[0]['target']:.0%} (s) | reached | best valid | epochs vs random | time to target vs random |")
print("|---|---|---|---|---|---|---|---|---|---|")
for m, rs in by.items():
    epochs, wall, t = med([r["epochs"] for r in rs]), med([r["wall_seconds"] for r in rs]), to_target(rs)
    reached = sum(r["seconds_to_target"] is not None for r in rs)
    vs_epochs = f"{med([r['epochs'] for r in base]) / epochs:.2f}x" if base else "-"
    vs_time = f"{to_target(base) / t:.2f}x" if base else "-"
    print(f"| {m} | {len(rs)} | {med([r['trials'] for r in rs]):.0f} | {epochs:.0f} | {wall:.0f} | {t:.0f} | {reached}/{len(rs)} | {med([r['best_valid_accuracy'] for r in rs]):.4f} | {vs_epochs} | {vs_time} |")
EOF
