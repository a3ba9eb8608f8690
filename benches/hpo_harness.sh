#!/usr/bin/env bash
# Lepton's samplers through the shared HPO harness (../shared/bench-hpo), side by side with the
# Python anchors already stored in its results/ (Optuna 5, Rustuna 0.2, hyperopt, skopt, SMAC3).
#
#   bash benches/hpo_harness.sh [SEEDS] [SAMPLERS]
#     SEEDS     default 0-19 (the anchors' fast methods ran 20 seeds, GP/SMAC/skopt 5)
#     SAMPLERS  default "tpe gp cmaes random sobol"
#
# Needs python3 with numpy (python3 -m venv /tmp/v && /tmp/v/bin/pip install numpy; PY=/tmp/v/bin/python).
# Writes the harness copy to ${HPO_DIR:-/tmp/lepton-bench-hpo} and prints its summary table.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
seeds="${1:-0-19}"
samplers="${2:-tpe gp cmaes random sobol}"
py="${PY:-python3}"
dir="${HPO_DIR:-/tmp/lepton-bench-hpo}"
shared="${LEPTON_BENCH_HPO:-$root/../shared/bench-hpo}"
[ -d "$dir" ] || cp -r "$shared" "$dir"
chmod -R u+w "$dir"
cargo build --release --example hpo_protocol
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/hpo_protocol"
args=()
for s in $samplers; do
    rm -f "$dir"/results/raw/*__ext_lepton-"$s".jsonl
    args+=(--ext "lepton-$s=$bin --sampler $s")
done
(cd "$dir" && "$py" runner.py --problems all "${args[@]}" --seeds "$seeds" --jobs 2 | tail -1)
(cd "$dir" && "$py" summary.py)
